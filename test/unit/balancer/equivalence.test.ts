/**
 * The optimized planner (flat arrays, interned labels, eligibility per distinct selector) returns the
 * same plan, byte for byte, as the planner before the optimization (kept in ./reference), wherever
 * the rules did not change since: the reference balances a group's unconstrained tasks among
 * themselves, ignoring that group's constrained tasks; the planner counts those where they are
 * (constrained-balance.test.ts). So the equivalence covers inputs where no group has both kinds of
 * tasks without a key, and on the others, the placement of every task that is not such a free task.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type PlanInput, plan, type Task, type WorkerSpec } from "../../../src/balancer/index.js";
import { plan as referencePlan } from "./reference/plan.js";
import { constrainedScenarios } from "./constraint-support.js";
import { runs, scenarios } from "./support.js";

function outcome(planner: (input: PlanInput) => unknown, input: PlanInput): string {
  try {
    return JSON.stringify(planner(input));
  } catch (error) {
    return `throws ${(error as Error).message}`;
  }
}

function expectSame(input: PlanInput): void {
  expect(outcome(plan, input)).toBe(outcome(referencePlan, input));
}

const constrained = (task: Task) =>
  task.selector !== undefined || task.spread !== undefined || task.antiKey !== undefined;

/** The scenario with its unconstrained tasks without a key in groups of their own. */
function separateFree<T extends PlanInput>(input: T): T {
  const tasks = input.tasks.map((task) =>
    task.key === undefined && !constrained(task) ? { ...task, group: `${task.group ?? ""}/free` } : task,
  );
  return { ...input, tasks };
}

/** Both planners put every task that has a key or a constraint on the same worker (no capacities). */
function expectSameConstrainedPlacement(input: PlanInput): void {
  const owners = (result: ReturnType<typeof plan>) => {
    const owner = new Map<string, string>();
    for (const [worker, ids] of Object.entries(result.assignment))
      for (const id of ids) owner.set(id, worker);
    return owner;
  };
  const ours = owners(plan(input));
  const theirs = owners(referencePlan(input));
  for (const task of input.tasks) {
    if (task.key === undefined && !constrained(task)) continue;
    expect(ours.get(task.id), task.id).toBe(theirs.get(task.id));
  }
}

/** The scenario with the workers whose bit is set in `mask` cordoned. */
function cordon(input: PlanInput, mask: number): PlanInput {
  const workers = input.workers.map((worker, i) => {
    if (!((mask >> i) & 1)) return worker;
    return { ...(typeof worker === "string" ? { name: worker } : worker), cordoned: true };
  });
  return { ...input, workers };
}

/** The bench's shape in small: zones, selectors on a fifth, spreads on half the groups, keys on the rest. */
function benchLike(taskCount: number, workerCount: number, zones: number): PlanInput {
  const zone = (i: number) => `z${i % zones}`;
  const workers: WorkerSpec[] = Array.from({ length: workerCount }, (_, i) => ({
    name: `worker-${i}`,
    labels: { zone: zone(i) },
  }));
  const tasks: Task[] = Array.from({ length: taskCount }, (_, i) => {
    const group = i % 10;
    const task: Task = { id: `task-${i}`, group: `group-${group}` };
    if (i % 5 === 1) task.selector = { zone: zone(i) };
    else if (group % 2 === 0) task.spread = { label: "zone", maxSkew: 1 };
    else if (i % 10 === 3) task.key = `key-${Math.floor(i / 50)}`;
    return task;
  });
  return { workers, tasks };
}

describe("the optimized planner returns the plans of the reference planner", () => {
  it("over random labelled fleets with selectors, spreads, antiKeys, keys, capacities and cordons", () => {
    fc.assert(
      fc.property(
        constrainedScenarios({ maxWorkers: 7, maxTasks: 40, keys: true, capacities: true }),
        fc.integer({ min: 0, max: 127 }),
        fc.boolean(),
        (mixed, mask, cordoned) => {
          const scenario = separateFree(mixed);
          expectSame(scenario);
          if (cordoned) expectSame(cordon(scenario, mask));
        },
      ),
      runs(400),
    );
  });

  it("over random labelled fleets without capacities (where a second admission round is skipped)", () => {
    fc.assert(
      fc.property(constrainedScenarios({ maxWorkers: 7, maxTasks: 40, keys: true }), (scenario) => {
        expectSame(separateFree(scenario));
        expectSameConstrainedPlacement(scenario);
      }),
      runs(300),
    );
  });

  it("over random fleets without constraints (keys, weights, priorities, capacities)", () => {
    fc.assert(
      fc.property(
        scenarios({
          maxWorkers: 6,
          maxTasks: 40,
          groups: 3,
          keys: 4,
          maxWeight: 3,
          priorities: 3,
          maxCapacity: 8,
        }),
        (scenario) => {
          expectSame(scenario);
        },
      ),
      runs(200),
    );
  });

  it("on the bench's shape: a first plan, a zone lost and the zone back", () => {
    for (const [tasks, workers] of [
      [3_000, 30],
      [2_000, 31],
    ] as const) {
      const input = benchLike(tasks, workers, 3);
      const first = referencePlan(input);
      expect(outcome(plan, input)).toBe(JSON.stringify(first));
      const left = {
        ...input,
        workers: input.workers.filter((w) => (w as WorkerSpec).labels?.zone !== "z2"),
      };
      const lost = referencePlan({ ...left, current: first.assignment });
      expect(outcome(plan, { ...left, current: first.assignment })).toBe(JSON.stringify(lost));
      expectSame({ ...input, current: lost.assignment });
    }
  });
});
