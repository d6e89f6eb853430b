import { describe, expect, it } from "vitest";
import { plan } from "../../../src/balancer/index.js";
import type { Cordons } from "../../../src/master/controls.js";
import { applyPins } from "../../../src/master/pins.js";
import type { PinRecord } from "../../../src/node/index.js";

const noCordons = (): Cordons => ({ records: new Map(), draining: new Set() });
const pin = (worker: string): PinRecord => ({ worker, at: "" });
/** Whether a worker holds a task, from a plain assignment. */
const current = (assignment: Record<string, string[]>) => (taskId: string, worker: string) =>
  assignment[worker]?.includes(taskId) === true;

describe("pins as planner input", () => {
  const registered = [
    { name: "w1", labels: { zone: "a" } },
    { name: "w2", labels: { zone: "b" } },
    { name: "w3", labels: { zone: "b" } },
  ];
  const workers = registered.map((worker) => ({ ...worker }));
  const tasks = Array.from({ length: 6 }, (_, i) => ({ id: `t${i}` }));

  it("puts a pinned task on its worker, and moves one other task so the group stays balanced", () => {
    const now = { w1: ["t0", "t1"], w2: ["t2", "t3"], w3: ["t4", "t5"] };
    const pinned = applyPins(
      { workers, tasks },
      new Map([["t0", pin("w3")]]),
      registered,
      noCordons(),
      current(now),
    );
    expect(pinned.ignored).toEqual([]);
    const target = plan({ workers: pinned.workers, tasks: pinned.tasks, current: now });
    expect(target.assignment.w3).toContain("t0");
    // The balance counts the pinned task where it is pinned (f3346a8): w3 would hold 3 and w1 1, so
    // one of w3's free tasks moves to w1 — two moves, the fewest that end 2/2/2.
    expect(target.moved).toBe(2);
    expect(target.remove.w1).toEqual(["t0"]);
    expect(target.remove.w3).toHaveLength(1);
    expect(["t4", "t5"]).toContain(target.remove.w3?.[0]);
    expect(Object.values(target.assignment).map((ids) => ids.length)).toEqual([2, 2, 2]);
  });

  it("ignores a pin to a worker that is not eligible, saying why", () => {
    const cordons = noCordons();
    cordons.records.set("w2", { mode: "cordon", at: "" });
    cordons.records.set("w3", { mode: "drain", at: "" });
    const pins = new Map([
      ["t0", pin("w2")],
      ["t1", pin("w2")],
      ["t2", pin("w3")],
      ["t3", pin("ghost")],
      ["t4", pin("w1")],
      ["t5", pin("w1")],
    ]);
    const withRules = tasks.map((task) =>
      task.id === "t4"
        ? { ...task, selector: { zone: "b" } }
        : task.id === "t5"
          ? { ...task, key: "k" }
          : task,
    );
    const pinned = applyPins(
      { workers, tasks: withRules },
      pins,
      registered,
      cordons,
      current({ w2: ["t1"] }),
    );
    expect(pinned.ignored).toEqual([
      { id: "t0", worker: "w2", reason: "w2 is cordoned" },
      { id: "t2", worker: "w3", reason: "w3 is draining" },
      { id: "t3", worker: "ghost", reason: "ghost is not registered" },
      { id: "t4", worker: "w1", reason: "w1 does not match the task's selector (zone=b)" },
      { id: "t5", worker: "w1", reason: "the task has an affinity key (k) that decides its worker" },
    ]);
    // A cordoned worker keeps the pinned task it already holds.
    expect(pinned.tasks.find((task) => task.id === "t1")?.selector).toEqual({
      "pin.escheduler.io/w0": { exists: true },
    });
    expect(pinned.workers.find((worker) => worker.name === "w2")?.labels).toEqual({
      zone: "b",
      "pin.escheduler.io/w0": "",
    });
  });
});
