/**
 * The tasks of a group without a constraint are balanced counting the group's constrained tasks (a
 * pin, a selector, a spread, an antiKey) where those are placed: DESIGN's "the unit-weight tasks of
 * one group differ by at most 1 between any two workers" and the README's "balance counts the task
 * where it is pinned".
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type Plan, plan, type Task, type WorkerSpec } from "../../../src/balancer/index.js";
import { applyPins } from "../../../src/master/pins.js";
import { constrainedScenarios, ownerOf } from "./constraint-support.js";
import { runs } from "./support.js";

const constrained = (task: Task) =>
  task.selector !== undefined || task.spread !== undefined || task.antiKey !== undefined;

/** Per worker, the plan's count of `group`'s tasks without a key, and whether it holds a free one. */
function groupCounts(tasks: readonly Task[], workers: readonly WorkerSpec[], result: Plan, group: string) {
  const count = new Map(workers.map((w) => [w.name, 0]));
  const holdsFree = new Set<string>();
  const owner = ownerOf(result);
  for (const task of tasks) {
    if ((task.group ?? "") !== group || task.key !== undefined) continue;
    const w = owner.get(task.id);
    if (w === undefined) continue;
    count.set(w, (count.get(w) ?? 0) + 1);
    if (!constrained(task)) holdsFree.add(w);
  }
  return { count, holdsFree };
}

/**
 * The bound, per group (unit weights, no capacities): a worker that holds one of the group's tasks
 * without a constraint holds at most one more of the group's tasks (constrained ones included) than
 * any other worker. Only a worker holding none of them may be further above: its constrained tasks
 * alone put it there (more pinned or selected tasks on it than the group's level), and it takes no
 * free task of the group.
 */
function expectGroupsBalanced(tasks: readonly Task[], workers: readonly WorkerSpec[], result: Plan): void {
  for (const group of new Set(tasks.map((task) => task.group ?? ""))) {
    const { count, holdsFree } = groupCounts(tasks, workers, result, group);
    const lowest = Math.min(...count.values());
    for (const w of holdsFree) {
      expect(count.get(w), `group ${group} on ${w}: ${JSON.stringify([...count])}`).toBeLessThanOrEqual(
        lowest + 1,
      );
    }
  }
}

/**
 * Sticky: per group, a live worker keeps as many of the free tasks it holds as its new count allows,
 * so the free tasks that move are exactly those above the new counts.
 */
function expectFreeMovesFewest(
  scenario: { tasks: Task[]; workers: WorkerSpec[]; current: Record<string, string[]> },
  result: Plan,
): void {
  const live = new Set(scenario.workers.map((w) => w.name));
  const owner = ownerOf(result);
  const held = new Map<string, string>();
  for (const [w, ids] of Object.entries(scenario.current))
    if (live.has(w)) for (const id of ids) held.set(id, w);
  const free = scenario.tasks.filter((task) => task.key === undefined && !constrained(task));
  let moves = 0;
  const heldCount = new Map<string, number>();
  const endCount = new Map<string, number>();
  const bump = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1);
  for (const task of free) {
    const from = held.get(task.id);
    const to = owner.get(task.id);
    if (to !== undefined) bump(endCount, `${task.group}|${to}`);
    if (from === undefined) continue;
    bump(heldCount, `${task.group}|${from}`);
    if (to !== undefined && to !== from) moves++;
  }
  let fewest = 0;
  for (const [cell, count] of heldCount) fewest += Math.max(0, count - (endCount.get(cell) ?? 0));
  expect(moves).toBe(fewest);
}

const moved = (before: Record<string, readonly string[]>, result: Plan) => {
  const was = new Map<string, string>();
  for (const [w, ids] of Object.entries(before)) for (const id of ids) was.set(id, w);
  let count = 0;
  for (const [id, w] of ownerOf(result)) if (was.has(id) && was.get(id) !== w) count++;
  return count;
};

describe("a group's free tasks are balanced around its constrained ones", () => {
  const six = Array.from({ length: 6 }, (_, i): Task => ({ id: `t${i}` }));
  const workers: WorkerSpec[] = [{ name: "w1" }, { name: "w2" }];
  const balanced = { w1: ["t0", "t1", "t2"], w2: ["t3", "t4", "t5"] };
  const pinned = (id: string, worker: string) =>
    applyPins(
      { workers, tasks: six },
      new Map([[id, { worker, at: "2026-12-01T00:00:00.000Z" }]]),
      workers,
      { records: new Map(), draining: new Set() },
      (task, w) => (balanced as Record<string, string[]>)[w]?.includes(task) === true,
    );

  it("6 tasks on 2 workers with t3 pinned to w1 end 3/3, t3 and one other task moving", () => {
    const input = pinned("t3", "w1");
    expect(input.ignored).toEqual([]);
    const result = plan({ workers: input.workers, tasks: input.tasks, current: balanced });
    expect(ownerOf(result).get("t3")).toBe("w1");
    expect(result.assignment.w1).toHaveLength(3);
    expect(result.assignment.w2).toHaveLength(3);
    expect(moved(balanced, result)).toBe(2);
  });

  it("a task pinned where it runs on a balanced fleet moves nothing", () => {
    const input = pinned("t0", "w1");
    const result = plan({ workers: input.workers, tasks: input.tasks, current: balanced });
    expect(result.assignment.w1.toSorted()).toEqual(balanced.w1);
    expect(result.assignment.w2.toSorted()).toEqual(balanced.w2);
    expect(result.moved).toBe(0);
  });

  it("more selected tasks on a worker than the group's level: the free tasks go to the others", () => {
    const fleet: WorkerSpec[] = [
      { name: "a", labels: { ssd: "yes" } },
      { name: "b", labels: {} },
      { name: "c", labels: {} },
    ];
    const tasks: Task[] = [
      ...Array.from({ length: 5 }, (_, i): Task => ({ id: `s${i}`, selector: { ssd: "yes" } })),
      ...Array.from({ length: 4 }, (_, i): Task => ({ id: `f${i}` })),
    ];
    const result = plan({ workers: fleet, tasks });
    expect(result.assignment.a.toSorted()).toEqual(["s0", "s1", "s2", "s3", "s4"]);
    expect(result.assignment.b).toHaveLength(2);
    expect(result.assignment.c).toHaveLength(2);
  });

  it("over random fleets with selectors, spreads, antiKeys and keys: per group within 1 where free tasks go, only the free tasks above the new counts moving", () => {
    fc.assert(
      fc.property(constrainedScenarios({ maxWorkers: 6, maxTasks: 40, keys: true }), (scenario) => {
        const result = plan(scenario);
        expectGroupsBalanced(scenario.tasks, scenario.workers, result);
        expectFreeMovesFewest(scenario, result);
      }),
      runs(400),
    );
  });

  // The constrained pass alone is not always a fixed point (an antiKey shared with a keyed task can
  // make it trade places: left to that pass); the balance around it is, whenever it stays.
  it("over random fleets: re-planning its own result moves no free task when no constrained one moves", () => {
    fc.assert(
      fc.property(constrainedScenarios({ maxWorkers: 6, maxTasks: 40, keys: true }), (scenario) => {
        const first = plan(scenario);
        const again = plan({ ...scenario, current: first.assignment });
        const before = ownerOf(first);
        const after = ownerOf(again);
        const moves = (free: boolean) =>
          scenario.tasks.filter(
            (task) =>
              (task.key === undefined && !constrained(task)) === free &&
              before.has(task.id) &&
              before.get(task.id) !== after.get(task.id),
          ).length;
        if (moves(false) > 0) return;
        expect(moves(true)).toBe(0);
        expect(again.assignment).toEqual(first.assignment);
      }),
      runs(300),
    );
  });
});
