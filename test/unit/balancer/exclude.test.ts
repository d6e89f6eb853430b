import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type PlanInput, plan } from "../../../src/balancer/index.js";
import { expectConsistent, scenarios, workerName } from "./support.js";

/** Each task of the scenario excluded from the workers whose bit is set in its mask. */
function excludeSome(input: PlanInput, masks: number[]): Map<string, string[]> {
  const names = input.workers.map(workerName);
  const exclude = new Map<string, string[]>();
  input.tasks.forEach((task, i) => {
    const mask = masks[i % Math.max(1, masks.length)] ?? 0;
    const avoided = names.filter((_, w) => (mask >> w) & 1);
    if (avoided.length > 0) exclude.set(task.id, avoided);
  });
  return exclude;
}

describe("planner: workers a task failed on (exclude)", () => {
  it("never places a task on a worker it must avoid; one that may go nowhere is unassigned as failed; the plan stays consistent", () => {
    fc.assert(
      fc.property(
        scenarios({ maxWorkers: 5, maxTasks: 30, groups: 2, keys: 3 }),
        fc.array(fc.nat(31), { minLength: 1, maxLength: 30 }),
        (scenario, masks) => {
          const exclude = excludeSome(scenario, masks);
          const input = { ...scenario, exclude };
          const result = plan(input);
          expectConsistent(input, result);
          for (const [worker, ids] of Object.entries(result.assignment))
            for (const id of ids) expect(exclude.get(id) ?? [], `${id} on ${worker}`).not.toContain(worker);
          const online = input.workers.map(workerName);
          for (const task of input.tasks) {
            const avoided = exclude.get(task.id) ?? [];
            if (task.key === undefined && online.every((worker) => avoided.includes(worker)))
              expect(result.reasons[task.id]?.kind).toBe("failed");
          }
        },
      ),
    );
  });

  it("moves the excluded task off the worker it failed on, and one other only to keep its group within one per worker", () => {
    const tasks = ["a", "b", "c", "d", "e", "f"].map((id) => ({ id }));
    const current = { w1: ["a", "b"], w2: ["c", "d"], w3: ["e", "f"] };
    const result = plan({ workers: ["w1", "w2", "w3"], tasks, current, exclude: { c: ["w2"] } });
    expect(result.remove.w2).toEqual(["c"]);
    expect(result.moved).toBe(2);
    expect(Object.values(result.assignment).map((ids) => ids.length)).toEqual([2, 2, 2]);
    expect(result.assignment.w2).toContain("d");
  });

  it("a failing task in a group of its own moves alone", () => {
    const tasks = [..."abcdef"].map((id) => ({ id })).concat({ id: "x", group: "bad" } as { id: string });
    const current = { w1: ["a", "b"], w2: ["c", "d", "x"], w3: ["e", "f"] };
    const result = plan({ workers: ["w1", "w2", "w3"], tasks, current, exclude: { x: ["w2"] } });
    expect(result.remove).toEqual({ w2: ["x"] });
    expect(result.moved).toBe(1);
  });

  it("says where a task failed when no worker is left for it", () => {
    const result = plan({ workers: ["w1", "w2"], tasks: [{ id: "a" }], exclude: { a: ["w1", "w2"] } });
    expect(result.unassigned).toEqual(["a"]);
    expect(result.reasons.a).toEqual({ kind: "failed", text: "failed on every eligible worker (w1, w2)" });
  });

  it("during a rollout too: the excluded task leaves the worker it failed on, for a worker it has not", () => {
    const result = plan({
      workers: [
        { name: "w1", generation: "v1" },
        { name: "w2", generation: "v1" },
        { name: "w3", generation: "v2" },
      ],
      generations: ["v2", "v1"],
      tasks: [{ id: "a" }, { id: "b" }],
      current: { w1: ["a"], w2: ["b"] },
      exclude: { a: ["w1", "w3"] },
    });
    expect(result.assignment.w2).toContain("a");
    const nowhere = plan({
      workers: [
        { name: "w1", generation: "v1" },
        { name: "w2", generation: "v2" },
      ],
      generations: ["v2", "v1"],
      tasks: [{ id: "a" }],
      exclude: { a: ["w1", "w2"] },
    });
    expect(nowhere.reasons.a?.kind).toBe("failed");
  });

  it("a cordoned worker does not keep a task it must avoid", () => {
    const result = plan({
      workers: [{ name: "w1", cordoned: true }, "w2"],
      tasks: [{ id: "a" }, { id: "b" }],
      current: { w1: ["a", "b"] },
      exclude: { a: ["w1"] },
    });
    expect(result.assignment).toEqual({ w1: ["b"], w2: ["a"] });
  });

  it("ignores unknown task ids and workers that are gone; rejects a malformed exclude", () => {
    const result = plan({ workers: ["w1"], tasks: [{ id: "a" }], exclude: { a: ["gone"], zz: ["w1"] } });
    expect(result.assignment.w1).toEqual(["a"]);
    expect(() =>
      plan({ workers: ["w1"], tasks: [{ id: "a" }], exclude: { a: "w1" as unknown as string[] } }),
    ).toThrow(/exclude\["a"\].*array of worker names/);
  });
});
