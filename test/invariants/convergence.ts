/**
 * The state a converged cluster must reach, read from etcd at one revision and from the handlers:
 * every generated task assigned to one registered worker and running there, exactly once; and the
 * planner's balance and stickiness rules on assignments.
 */
import type { Etcd3 } from "etcd3";
import { type ClusterView, readClusterView } from "../../src/readiness/index.js";
import type { KeyLayout, Task } from "../../src/node/index.js";
import type { RunInterval } from "./runs.js";

/** worker → task ids, sorted (the part of a cluster view the balance and stickiness checks need). */
export type Assignment = Map<string, string[]>;

/**
 * After convergence: every generated task is assigned to exactly one registered worker and reported
 * `running` there, nothing else is assigned or reported, the last plan covers exactly the registered
 * workers, the registered workers are exactly `liveWorkers`, and the handlers run exactly the
 * assignment (no stale task still running anywhere).
 */
export function convergenceProblems(
  view: ClusterView,
  expected: readonly Task[],
  liveWorkers: readonly string[],
  intervals: readonly RunInterval[],
): string[] {
  const problems: string[] = [];
  const registered = [...view.workers.keys()].sort();
  const live = [...liveWorkers].sort();
  if (!sameList(registered, live)) {
    problems.push(`registered workers are [${registered}], expected the live ones [${live}]`);
  }
  if (!view.leader) problems.push("no master leads");
  const planned = [...(view.plan?.workers ?? [])].sort();
  if (!sameList(planned, registered)) {
    problems.push(`the last plan covers [${planned}], not the registered workers [${registered}]`);
  }
  const owners = new Map<string, string[]>();
  for (const [worker, ids] of view.assignments) {
    for (const id of ids) owners.set(id, [...(owners.get(id) ?? []), worker]);
  }
  const expectedIds = new Set(expected.map((task) => task.id));
  for (const id of expectedIds) {
    const where = owners.get(id) ?? [];
    if (where.length !== 1) {
      problems.push(`task ${id} is assigned to ${where.length} workers [${where}]`);
      continue;
    }
    if (!view.workers.has(where[0]))
      problems.push(`task ${id} is assigned to ${where[0]}, which is not registered`);
    const state = view.statuses.get(where[0])?.get(id)?.state;
    if (state !== "running") problems.push(`task ${id} on ${where[0]} is ${state ?? "without a status"}`);
  }
  for (const id of owners.keys()) {
    if (!expectedIds.has(id)) problems.push(`task ${id} is assigned but not generated`);
  }
  for (const [worker, statuses] of view.statuses) {
    for (const id of statuses.keys()) {
      if (!view.assignments.get(worker)?.includes(id)) {
        problems.push(`${worker} reports task ${id}, which is not assigned to it`);
      }
    }
  }
  // What the handlers run now must be exactly the assignment, on the registered process.
  const running = new Set(
    intervals.filter((run) => run.to === Number.POSITIVE_INFINITY).map((run) => `${run.pid}/${run.task}`),
  );
  const wanted = new Set<string>();
  for (const [worker, ids] of view.assignments) {
    const pid = view.workers.get(worker)?.pid;
    for (const id of ids) wanted.add(`${pid}/${id}`);
  }
  for (const key of wanted)
    if (!running.has(key)) problems.push(`handler of pid/task ${key} is not running it`);
  for (const key of running) if (!wanted.has(key)) problems.push(`handler of pid/task ${key} still runs it`);
  return problems;
}

/** The cluster view (one revision) and its assignment. */
export async function readState(
  client: Etcd3,
  keys: KeyLayout,
): Promise<{ view: ClusterView; assignment: Assignment }> {
  const view = await readClusterView(client, keys);
  const assignment: Assignment = new Map();
  for (const worker of view.workers.keys())
    assignment.set(worker, [...(view.assignments.get(worker) ?? [])].sort());
  return { view, assignment };
}

/** Tasks the balance rule covers: no key, unit weight, no placement constraint. */
const balanced = (task: Task) =>
  task.key === undefined &&
  (task.weight ?? 1) === 1 &&
  task.selector === undefined &&
  task.spread === undefined &&
  task.antiKey === undefined;

/**
 * The planner's balance rule on an assignment: among unkeyed unit-weight tasks, each group's counts
 * differ by at most 1 between any two workers, and so do the totals.
 */
export function balanceProblems(assignment: Assignment, tasks: readonly Task[]): string[] {
  const groupOf = new Map(tasks.filter(balanced).map((task) => [task.id, task.group ?? ""]));
  const groups = new Set(groupOf.values());
  const problems: string[] = [];
  const spread = (label: string, count: (ids: string[]) => number) => {
    const counts = [...assignment].map(([worker, ids]) => `${worker}=${count(ids)}`);
    const values = [...assignment.values()].map(count);
    if (values.length > 0 && Math.max(...values) - Math.min(...values) > 1) {
      problems.push(`${label} is unbalanced: ${counts.join(" ")}`);
    }
  };
  for (const group of groups) {
    spread(`group "${group}"`, (ids) => ids.filter((id) => groupOf.get(id) === group).length);
  }
  spread("the total", (ids) => ids.filter((id) => groupOf.has(id)).length);
  return problems;
}

/**
 * The planner's stickiness on one transition: a worker present before and after never both lost and
 * gained tasks of one group (swapping them back would balance as well with fewer moves).
 */
export function stickinessProblems(before: Assignment, after: Assignment, tasks: readonly Task[]): string[] {
  const groupOf = new Map(tasks.filter(balanced).map((task) => [task.id, task.group ?? ""]));
  const problems: string[] = [];
  for (const [worker, afterIds] of after) {
    const beforeIds = before.get(worker);
    if (!beforeIds) continue;
    const had = new Set(beforeIds.filter((id) => groupOf.has(id)));
    const has = new Set(afterIds.filter((id) => groupOf.has(id)));
    for (const group of new Set(groupOf.values())) {
      const lost = [...had].filter((id) => !has.has(id) && groupOf.get(id) === group);
      const gained = [...has].filter((id) => !had.has(id) && groupOf.get(id) === group);
      if (lost.length > 0 && gained.length > 0) {
        problems.push(`${worker} lost [${lost}] and gained [${gained}] of group "${group}": needless moves`);
      }
    }
  }
  return problems;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((value, i) => value === b[i]);
}
