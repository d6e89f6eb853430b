import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type PlanInput, plan, settleMoves, type WorkerSpec } from "../../../src/balancer/index.js";
import {
  type Current,
  expectConsistent,
  loads,
  movedIds,
  names,
  runs,
  scenarios,
  spread,
  tasksOf,
  workerName,
} from "./support.js";

/** The scenario with the workers whose bit is set in `mask` cordoned. */
function cordonSome(input: PlanInput, mask: number): { input: PlanInput; cordoned: Set<string> } {
  const cordoned = new Set<string>();
  const workers = input.workers.map((worker, i) => {
    if (!((mask >> i) & 1)) return worker;
    const spec: WorkerSpec = typeof worker === "string" ? { name: worker } : { ...worker };
    cordoned.add(spec.name);
    return { ...spec, cordoned: true };
  });
  return { input: { ...input, workers }, cordoned };
}

describe("planner: cordoned workers", () => {
  it("a cordoned worker keeps exactly its generated unkeyed tasks and takes nothing new; the rest balance among the others", () => {
    fc.assert(
      fc.property(scenarios({ maxWorkers: 6, maxTasks: 40, groups: 2 }), fc.nat(63), (scenario, mask) => {
        const { input, cordoned } = cordonSome(scenario, mask);
        const result = plan(input);
        expectConsistent(input, result);
        const generated = new Set(input.tasks.map((task) => task.id));
        for (const worker of cordoned) {
          const kept = new Set((scenario.current[worker] ?? []).filter((id) => generated.has(id)));
          expect(new Set(result.assignment[worker])).toEqual(kept);
          expect(result.add[worker]).toBeUndefined();
        }
        const free = Object.keys(result.assignment).filter((worker) => !cordoned.has(worker));
        const freePlan = {
          ...result,
          assignment: Object.fromEntries(free.map((w) => [w, result.assignment[w]])),
        };
        const keptIds = new Set([...cordoned].flatMap((worker) => result.assignment[worker]));
        for (const [group, perWorker] of loads(
          input.tasks.filter((task) => !keptIds.has(task.id)),
          freePlan,
          () => true,
        )) {
          expect(spread(perWorker.values()), `group ${group}`).toBeLessThanOrEqual(1);
        }
        if (free.length === 0) {
          expect(new Set(result.unassigned)).toEqual(
            new Set([...generated].filter((id) => !keptIds.has(id))),
          );
        }
      }),
      runs(300),
    );
  });

  it("keyed tasks stay together; a key held by a cordoned worker stays there, new tasks of the key included", () => {
    fc.assert(
      fc.property(
        scenarios({ maxWorkers: 5, maxTasks: 30, groups: 2, keys: 4 }),
        fc.nat(31),
        (scenario, mask) => {
          const { input, cordoned } = cordonSome(scenario, mask);
          const result = plan(input);
          expectConsistent(input, result);
          const where = new Map<string, string>();
          for (const [worker, ids] of Object.entries(result.assignment))
            for (const id of ids) where.set(id, worker);
          const byKey = new Map<string, Set<string | undefined>>();
          for (const task of input.tasks) {
            if (task.key === undefined) continue;
            const owners = byKey.get(task.key) ?? new Set();
            owners.add(where.get(task.id));
            byKey.set(task.key, owners);
          }
          for (const owners of byKey.values()) expect(owners.size).toBe(1);
          const generated = new Map(input.tasks.map((task) => [task.id, task]));
          for (const worker of cordoned) {
            const heldKeys = new Set(
              (scenario.current[worker] ?? []).flatMap((id) => generated.get(id)?.key ?? []),
            );
            for (const id of result.assignment[worker]) {
              const task = generated.get(id)!;
              const heldBefore = (scenario.current[worker] ?? []).includes(id);
              expect(heldBefore || (task.key !== undefined && heldKeys.has(task.key))).toBe(true);
            }
          }
        },
      ),
      runs(200),
    );
  });

  it("is deterministic and, with no cordon set, equals the plain plan", () => {
    fc.assert(
      fc.property(
        scenarios({ maxWorkers: 5, maxTasks: 30, groups: 2, keys: 3, maxCapacity: 12 }),
        fc.nat(31),
        (scenario, mask) => {
          const { input } = cordonSome(scenario, mask);
          expect(plan(input)).toEqual(plan(structuredClone(input)));
          const uncordoned = {
            ...scenario,
            workers: scenario.workers.map((w) => (typeof w === "string" ? w : { ...w, cordoned: false })),
          };
          expect(plan(uncordoned)).toEqual(plan(scenario));
        },
      ),
      runs(200),
    );
  });

  it("settling moves by history (what the leader does after planning) leaves every cordoned worker's tasks as planned", () => {
    fc.assert(
      fc.property(
        scenarios({ maxWorkers: 5, maxTasks: 30, groups: 2 }),
        fc.nat(31),
        fc.dictionary(fc.constantFrom(...names("t", 30)), fc.nat(3)),
        (scenario, mask, moveCounts) => {
          const { input, cordoned } = cordonSome(scenario, mask);
          const planned = plan(input);
          const joinedAt = new Map(input.workers.map((w, i) => [workerName(w), i]));
          const settled = settleMoves(planned, input, {
            moves: new Map(Object.entries(moveCounts)),
            joinedAt,
          });
          expectConsistent(input, settled);
          for (const worker of cordoned) {
            expect(new Set(settled.assignment[worker])).toEqual(new Set(planned.assignment[worker]));
          }
        },
      ),
      runs(200),
    );
  });

  it("counts a task leaving a cordoned worker (a key pulled to another cordoned worker) as moved", () => {
    const tasks = [...tasksOf(2, () => ({ key: "k" })), { id: "u" }];
    const current: Current = { a: ["t0", "u"], b: ["t1"] };
    const result = plan({
      workers: [{ name: "a", cordoned: true }, { name: "b", cordoned: true }, "c"],
      tasks,
      current,
    });
    expect(result.assignment).toEqual({ a: ["t0", "t1", "u"], b: [], c: [] });
    expect(result.moved).toBe(movedIds(current, result).length);
    expect(result.remove).toEqual({ b: ["t1"] });
  });

  it("a fleet of only cordoned workers leaves new tasks unassigned", () => {
    const workers = names("w", 2).map((name) => ({ name, cordoned: true }));
    const result = plan({ workers, tasks: tasksOf(4), current: { w0: ["t0"], gone: ["t1"] } });
    expect(result.assignment).toEqual({ w0: ["t0"], w1: [] });
    expect(result.unassigned).toEqual(["t1", "t2", "t3"]);
    expect(result.remove).toEqual({ gone: ["t1"] });
    expect(workers.map(workerName)).toEqual(["w0", "w1"]);
  });
});
