import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type PlanInput, plan, type Plan, type Task, type WorkerSpec } from "../../../src/balancer/index.js";
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

const OLD = "v1";
const NEW = "v2";
const GENERATIONS = [NEW, OLD];

/** The scenario's workers, those whose bit is set in `mask` of the new generation, the rest of the old one. */
function twoGenerations(input: PlanInput, mask: number): { input: PlanInput; fresh: Set<string> } {
  const fresh = new Set<string>();
  const workers = input.workers.map((worker, i) => {
    const spec: WorkerSpec = typeof worker === "string" ? { name: worker } : { ...worker };
    const generation = (mask >> i) & 1 ? NEW : OLD;
    if (generation === NEW) fresh.add(spec.name);
    return { ...spec, generation };
  });
  return { input: { ...input, workers, generations: GENERATIONS }, fresh };
}

function ownerOf(result: Plan): Map<string, string> {
  const owner = new Map<string, string>();
  for (const [worker, ids] of Object.entries(result.assignment)) for (const id of ids) owner.set(id, worker);
  return owner;
}

/**
 * The balanced share of each group and of the total ("*") over `count` workers (unit tasks): every
 * worker may carry the floor of the average, and only `slots` workers (the remainder) one more.
 */
function shares(tasks: readonly Task[], count: number): Map<string, { floor: number; slots: number }> {
  const totals = new Map<string, number>([["*", tasks.length]]);
  for (const task of tasks) totals.set(task.group ?? "", (totals.get(task.group ?? "") ?? 0) + 1);
  return new Map(
    [...totals].map(([group, total]) => {
      const floor = Math.floor(total / count);
      return [group, { floor, slots: total - floor * count }];
    }),
  );
}

describe("planner: a rollout (two generations online)", () => {
  it("a task goes to an older-generation worker only when no newer one has a balanced share or capacity left; tasks on live workers stay", () => {
    fc.assert(
      fc.property(
        scenarios({ maxWorkers: 6, maxTasks: 40, groups: 2, maxCapacity: 12 }),
        fc.nat(63),
        (scenario, mask) => {
          const { input, fresh } = twoGenerations(scenario, mask);
          const result = plan(input);
          expectConsistent(input, result);
          if (fresh.size === 0 || fresh.size === input.workers.length) return;
          const live = new Set(input.workers.map(workerName));
          const held = new Map<string, string>();
          for (const worker of [...live].sort())
            for (const id of scenario.current[worker] ?? []) if (!held.has(id)) held.set(id, worker);
          const owner = ownerOf(result);
          const byGroup = loads(scenario.tasks, result, () => true);
          const share = shares(input.tasks, live.size);
          const capacity = new Map(
            input.workers.map((w) => [
              workerName(w),
              (typeof w === "string" ? undefined : w.capacity) ?? Infinity,
            ]),
          );
          const above = (group: string) =>
            [...byGroup.get(group)!.values()].filter((load) => load > share.get(group)!.floor).length;
          const within = (worker: string, group: string) => {
            const load = byGroup.get(group)!.get(worker)!;
            const { floor, slots } = share.get(group)!;
            return load < floor || (load === floor && above(group) < slots);
          };
          // With the final loads: a newer worker with room at the end had it when the task was placed.
          const roomOn = (worker: string, group: string) =>
            within(worker, group) &&
            within(worker, "*") &&
            byGroup.get("*")!.get(worker)! < capacity.get(worker)!;
          for (const task of input.tasks) {
            const from = held.get(task.id);
            const to = owner.get(task.id);
            // Without capacities a held task never moves; with them, only when its worker lost the room.
            if (from !== undefined && to !== from) expect(capacity.get(from)).toBeLessThan(Infinity);
            if (
              to === undefined ||
              to === from ||
              fresh.has(to) ||
              fresh.size === 0 ||
              fresh.size === live.size
            )
              continue;
            expect([...fresh].filter((worker) => roomOn(worker, task.group ?? ""))).toEqual([]);
          }
        },
      ),
      runs(300),
    );
  });

  it("a rolling update (start k new workers, then drain k old ones, repeat) moves each task at most once and ends balanced", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 0, max: 60 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 3 }),
        (workerCount, taskCount, groups, surge) => {
          const tasks = tasksOf(taskCount, (i) => ({ group: `g${(i * 7) % (groups + (i % 2))}` }));
          const oldWorkers = names("old", workerCount);
          const newWorkers = names("new", workerCount);
          let workers: WorkerSpec[] = oldWorkers.map((name) => ({ name, generation: OLD }));
          const step = (): Plan => {
            const result = plan({ workers, tasks, current, generations: GENERATIONS });
            expectConsistent({ workers, tasks, current }, result);
            for (const [id, worker] of ownerOf(result)) {
              const before = where.get(id);
              if (before !== undefined && before !== worker) moves.set(id, (moves.get(id) ?? 0) + 1);
              where.set(id, worker);
            }
            current = Object.fromEntries(Object.entries(result.assignment));
            return result;
          };
          let current: Current = {};
          const where = new Map<string, string>();
          const moves = new Map<string, number>();
          step();
          moves.clear();
          for (let i = 0; i < workerCount; i += surge) {
            const joining = newWorkers.slice(i, i + surge);
            workers = [...workers, ...joining.map((name) => ({ name, generation: NEW }))];
            step();
            const leaving = new Set(oldWorkers.slice(i, i + surge));
            workers = workers.filter((worker) => !leaving.has(worker.name));
            step();
          }
          const final = step();
          expect(Object.keys(final.assignment).sort()).toEqual([...newWorkers].sort());
          expect([...moves.values()].filter((n) => n > 1)).toEqual([]);
          expect([...moves.values()].reduce((sum, n) => sum + n, 0)).toBe(taskCount);
          for (const perWorker of loads(tasks, final, () => true).values())
            expect(spread(perWorker.values())).toBeLessThanOrEqual(1);
        },
      ),
      runs(120),
    );
  });

  it("with keys, weights and capacities the plan stays whole: every task once, a key's tasks on one worker, capacity kept", () => {
    fc.assert(
      fc.property(
        scenarios({
          maxWorkers: 6,
          maxTasks: 40,
          groups: 2,
          keys: 3,
          maxWeight: 3,
          priorities: 2,
          maxCapacity: 15,
        }),
        fc.nat(63),
        (scenario, mask) => {
          const { input } = twoGenerations(scenario, mask);
          const result = plan(input);
          expectConsistent(input, result);
          const owner = ownerOf(result);
          for (const key of new Set(scenario.tasks.flatMap((task) => task.key ?? []))) {
            const holders = scenario.tasks
              .filter((task) => task.key === key)
              .map((task) => owner.get(task.id));
            expect(new Set(holders.filter((holder) => holder !== undefined)).size).toBeLessThanOrEqual(1);
          }
          const weight = new Map(scenario.tasks.map((task) => [task.id, task.weight ?? 1]));
          for (const worker of input.workers) {
            if (typeof worker === "string" || worker.capacity === undefined) continue;
            const load = result.assignment[worker.name].reduce((sum, id) => sum + weight.get(id)!, 0);
            expect(load).toBeLessThanOrEqual(worker.capacity);
          }
        },
      ),
      runs(200),
    );
  });

  it("with one generation online the plan is the plain planner's, whatever the generations list says", () => {
    fc.assert(
      fc.property(
        scenarios({ maxWorkers: 6, maxTasks: 40, groups: 2, keys: 3, maxWeight: 2, maxCapacity: 12 }),
        fc.constantFrom(OLD, NEW),
        (scenario, generation) => {
          const tagged = scenario.workers.map((worker) => ({
            ...(typeof worker === "string" ? { name: worker } : worker),
            generation,
          }));
          const plain = plan(scenario);
          expect(plan({ ...scenario, workers: tagged, generations: GENERATIONS })).toEqual(plain);
        },
      ),
      runs(200),
    );
  });

  it("newest is the first of `generations`: a gone worker's tasks fill its balanced shares first, the rest go to the other generation", () => {
    const tasks = tasksOf(6);
    const workers = [
      { name: "a", generation: "blue" },
      { name: "b", generation: "green" },
      { name: "c", generation: "green" },
    ];
    const current = { a: [], b: ["t0"], c: ["t1"], gone: ["t2", "t3", "t4", "t5"] };
    const toGreen = plan({ workers, tasks, current, generations: ["green", "blue"] });
    expect(toGreen.add.a).toEqual(["t4", "t5"]);
    expect([...toGreen.add.b, ...toGreen.add.c].sort()).toEqual(["t2", "t3"]);
    expect(toGreen.moved).toBe(4);
    const toBlue = plan({ workers, tasks, current, generations: ["blue", "green"] });
    expect(toBlue.add.a).toEqual(["t2", "t3"]);
    expect(toBlue.remove).toEqual({ gone: ["t2", "t3", "t4", "t5"] });
  });

  it("places a fleet's worth of tasks as fast as the plain planner (100,000 tasks, 1,000 workers, none held)", () => {
    const tasks = tasksOf(100_000, (i) => ({ group: `g${i % 50}` }));
    const workers = names("w", 1_000).map((name, i) => ({ name, generation: i % 10 === 0 ? NEW : OLD }));
    const time = (run: () => Plan) => {
      const started = performance.now();
      const result = run();
      return { ms: performance.now() - started, result };
    };
    const plain = time(() => plan({ workers: workers.map(({ name }) => name), tasks }));
    const rollout = time(() => plan({ workers, tasks, generations: GENERATIONS }));
    expect(rollout.result.unassigned).toEqual([]);
    // Measured against the plain plan in the same run, so a loaded machine cannot fail it (before the heap: 150×).
    expect(rollout.ms).toBeLessThan(10 * plain.ms + 200);
  });

  it("rejects a generation that is not a name", () => {
    expect(() =>
      plan({
        workers: [
          { name: "a", generation: "x" },
          { name: "b", generation: "" },
        ],
        tasks: [],
      }),
    ).toThrow(/worker "b": generation must not be empty/);
  });
});
