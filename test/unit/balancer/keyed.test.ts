import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type Plan, plan } from "../../../src/balancer/index.js";
import type { Task } from "../../../src/balancer/types.js";
import {
  type Current,
  expectConsistent,
  loads,
  names,
  runs,
  scenarios,
  spread,
  tasksOf,
  workerName,
} from "./support.js";

const keyed = (task: Task) => task.key !== undefined;

/** key → the one worker its tasks are on (fails if they are split). */
function keyHomes(tasks: Task[], result: Plan): Map<string, string> {
  const where = new Map<string, string>();
  for (const [worker, ids] of Object.entries(result.assignment)) for (const id of ids) where.set(id, worker);
  const homes = new Map<string, string>();
  for (const task of tasks.filter(keyed)) {
    const worker = where.get(task.id);
    if (worker === undefined) continue;
    expect(homes.get(task.key!) ?? worker, `key ${task.key}`).toBe(worker);
    homes.set(task.key!, worker);
  }
  return homes;
}

function keyStats(tasks: Task[], result: Plan) {
  const perWorker = loads(tasks, result, keyed).get("*") ?? new Map<string, number>();
  const sizes = new Map<string, number>();
  for (const task of tasks.filter(keyed))
    sizes.set(task.key!, (sizes.get(task.key!) ?? 0) + (task.weight ?? 1));
  const total = [...sizes.values()].reduce((a, b) => a + b, 0);
  const average = total / Object.keys(result.assignment).length;
  return { perWorker, sizes, average, largest: Math.max(0, ...sizes.values()) };
}

const keyedFleets = scenarios({
  maxWorkers: 10,
  maxTasks: 120,
  groups: 3,
  keys: 30,
  maxWeight: 3,
  priorities: 2,
});

describe("tasks with a key", () => {
  it("all tasks sharing a key land on one worker, with or without capacities", () => {
    fc.assert(
      fc.property(
        scenarios({ maxWorkers: 8, maxTasks: 80, groups: 3, keys: 10, maxWeight: 3, maxCapacity: 25 }),
        (input) => {
          const result = plan(input);
          expectConsistent(input, result);
          keyHomes(input.tasks, result);
          const unassigned = new Set(result.unassigned);
          for (const task of input.tasks.filter(keyed)) {
            const sameKey = input.tasks.filter((t) => t.key === task.key);
            expect(sameKey.every((t) => unassigned.has(t.id) === unassigned.has(task.id))).toBe(true);
          }
        },
      ),
      runs(150),
    );
  });

  it("every worker's keyed load is within 1.25× the average plus one key and at least 0.75× minus one key", () => {
    fc.assert(
      fc.property(keyedFleets, (input) => {
        const result = plan(input);
        const { perWorker, average, largest } = keyStats(input.tasks, result);
        for (const [worker, load] of perWorker) {
          expect(load, worker).toBeLessThanOrEqual(1.25 * average + largest + 1e-9);
          expect(load, worker).toBeGreaterThanOrEqual(0.75 * average - largest - 1e-9);
        }
      }),
      runs(200),
    );
  });

  it("tasks without a key stay balanced within one per group around the keyed load", () => {
    fc.assert(
      fc.property(scenarios({ maxWorkers: 10, maxTasks: 120, groups: 4, keys: 12 }), (input) => {
        const result = plan(input);
        for (const perWorker of loads(input.tasks, result, (t) => !keyed(t)).values()) {
          expect(spread(perWorker.values())).toBeLessThanOrEqual(1);
        }
      }),
      runs(150),
    );
  });

  it("a join moves keys only onto the newcomer (about 1/N of the load) or off workers above the bound", () => {
    fc.assert(
      fc.property(keyedFleets, (input) => {
        const before = plan(input);
        const workers = [...input.workers, "newcomer"];
        const after = plan({ workers, tasks: input.tasks, current: before.assignment });
        const was = keyHomes(input.tasks, before);
        const now = keyHomes(input.tasks, after);
        const { average, largest, sizes } = keyStats(input.tasks, after);
        const previous = keyStats(input.tasks, before).perWorker;
        let onto = 0;
        for (const [key, worker] of now) {
          if (was.get(key) === worker) continue;
          if (worker === "newcomer") onto += sizes.get(key)!;
          else expect(previous.get(was.get(key)!)!).toBeGreaterThan(1.25 * average + largest - 1e-9);
        }
        expect(onto).toBeLessThanOrEqual(average + largest + 1e-9);
      }),
      runs(150),
    );
  });

  it("a leave moves the leaver's keys, and others only to lift a worker below 0.75× average minus one key", () => {
    fc.assert(
      fc.property(keyedFleets, fc.nat(), (input, which) => {
        fc.pre(input.workers.length > 1);
        const before = plan(input);
        const leaver = workerName(input.workers[which % input.workers.length]);
        const workers = input.workers.filter((w) => workerName(w) !== leaver);
        const after = plan({ workers, tasks: input.tasks, current: before.assignment });
        const was = keyHomes(input.tasks, before);
        const { average, largest } = keyStats(input.tasks, after);
        const previous = keyStats(input.tasks, before).perWorker;
        for (const [key, worker] of keyHomes(input.tasks, after)) {
          const from = was.get(key);
          if (from === worker || from === leaver || from === undefined) continue;
          expect(previous.get(worker)!, `${key} ${from}→${worker}`).toBeLessThan(0.75 * average - largest);
        }
      }),
      runs(150),
    );
  });

  it("a key stays put while its worker lives and is within the bound: re-planning moves no key", () => {
    fc.assert(
      fc.property(keyedFleets, (input) => {
        const first = plan(input);
        const again = plan({ ...input, current: first.assignment as Current });
        expect(again.moved).toBe(0);
      }),
      runs(100),
    );
  });

  it("moves about 1/N of 1,000 keys when an 11th worker joins 10, all onto the newcomer", () => {
    const tasks = tasksOf(3000, (i) => ({ key: `k${i % 1000}` }));
    const workers = names("w", 10);
    const before = plan({ workers, tasks });
    const after = plan({ workers: [...workers, "w10"], tasks, current: before.assignment });
    const was = keyHomes(tasks, before);
    const moved = [...keyHomes(tasks, after)].filter(([key, worker]) => was.get(key) !== worker);
    expect(moved.every(([, worker]) => worker === "w10")).toBe(true);
    expect(moved.length).toBeGreaterThanOrEqual(Math.floor(0.9 * (1000 / 11)));
    expect(moved.length).toBeLessThanOrEqual(Math.ceil(1.1 * (1000 / 11)));
  });

  it("does not keep a key on a worker that a forced placement pushed past the bound (a plan is its own fixed point)", () => {
    // k4 (size 3) fits only on w3, which already holds k0: k0 moves to w2 now, not on the next plan.
    const input = {
      workers: [{ name: "w0", capacity: 0 }, { name: "w1", capacity: 1 }, { name: "w2", capacity: 2 }, "w3"],
      tasks: [
        { id: "t0", group: "g0", key: "k0", weight: 2 },
        { id: "t1", group: "g0", key: "k4", weight: 2 },
        { id: "t2", group: "g0", key: "k4", priority: 1 },
      ],
      current: { w3: ["t0"], w0: ["t1", "t2"] },
    };
    const first = plan(input);
    const again = plan({ ...input, current: first.assignment });
    expect(first.assignment.w2).toEqual(["t0"]);
    expect(again.add).toEqual({});
    expect(again.remove).toEqual({});
  });
});
