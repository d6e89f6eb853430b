import type { Problem } from "./model.js";
import { indexConstraints } from "./constraints.js";
import { matches } from "./labels.js";
import type { Labels, Plan, PlanInput, Task, WorkerSpec } from "./types.js";
import { indexInput } from "./validate.js";

/**
 * Plans around cordoned workers: each keeps the generated tasks it holds now and takes nothing new,
 * except that a key stays together (new tasks of a key it holds join it: affinity wins over the
 * cordon). Everything else is planned by `planFree` over the other workers, where the cordoned
 * workers' remaining listings count as a gone worker's (removed, and moved when placed elsewhere).
 * Balance holds among the uncordoned workers; a cordoned worker's load is whatever it kept.
 */
export function planAroundCordons(input: PlanInput, planFree: (input: PlanInput) => Plan): Plan {
  const problem = indexInput(input);
  indexConstraints(problem, input.tasks);
  const cordoned = new Set(
    input.workers.flatMap((worker) => (typeof worker !== "string" && worker.cordoned ? [worker.name] : [])),
  );
  const labelsOf = new Map(
    input.workers.flatMap((worker) =>
      typeof worker === "string" ? [] : [[worker.name, worker.labels] as const],
    ),
  );
  const keeper = keepers(
    problem,
    cordoned,
    (t, worker) =>
      eligibleOn(input.tasks[t], labelsOf.get(worker)) &&
      !problem.avoid?.get(t)?.includes(problem.workerIndex.get(worker) as number),
  );
  const free = input.workers.filter(
    (worker) => !cordoned.has(typeof worker === "string" ? worker : worker.name),
  );
  const freeTasks = input.tasks.filter((_, t) => keeper[t] === undefined);
  const keptBy = new Map<string, string>();
  input.tasks.forEach((task, t) => {
    if (keeper[t] !== undefined) keptBy.set(task.id, keeper[t]);
  });
  const freeCurrent = new Map<string, readonly string[]>();
  for (const listing of problem.current) {
    // A cordoned worker's listing of what it keeps is settled; anything else it lists is planned as a gone worker's.
    const ids = listing.ids.filter((id) => keptBy.get(id) !== listing.worker);
    if (ids.length > 0) freeCurrent.set(listing.worker, ids);
  }
  const inner: Plan =
    free.length > 0
      ? planFree({
          workers: free.map(uncordonedSpec),
          tasks: freeTasks,
          current: freeCurrent,
          exclude: input.exclude,
        })
      : {
          assignment: {},
          add: {},
          remove: removeAll(freeCurrent),
          unassigned: freeTasks.map((t) => t.id),
          reasons: Object.fromEntries(
            freeTasks.map((t) => [t.id, { kind: "capacity", text: "capacity: every worker is cordoned" }]),
          ),
          moved: 0,
        };
  return merge(problem, cordoned, keeper, inner);
}

/** For each task a cordoned worker keeps, that worker's name (by task index). */
/** Whether a worker with `labels` may hold `task`: its selector and spread label hold there. */
export function eligibleOn(task: Task, labels: Labels | undefined): boolean {
  if (task.selector !== undefined && !matches(task.selector, labels)) return false;
  return task.spread === undefined || (labels !== undefined && Object.hasOwn(labels, task.spread.label));
}

function keepers(
  problem: Problem,
  cordoned: ReadonlySet<string>,
  eligible: (t: number, worker: string) => boolean,
): Array<string | undefined> {
  const keeper: Array<string | undefined> = new Array(problem.ids.length);
  // A key goes to the cordoned worker holding most of its tasks (ties: the smaller name).
  const keyHeld = new Map<number, Map<string, number>>();
  for (const listing of problem.current) {
    if (!cordoned.has(listing.worker)) continue;
    for (const t of listing.tasks) {
      if (t < 0 || !eligible(t, listing.worker)) continue;
      const k = problem.key[t];
      if (k < 0) {
        keeper[t] ??= listing.worker;
        continue;
      }
      const counts = keyHeld.get(k) ?? new Map<string, number>();
      counts.set(listing.worker, (counts.get(listing.worker) ?? 0) + 1);
      keyHeld.set(k, counts);
    }
  }
  const keyKeeper = new Map<number, string>();
  for (const [k, counts] of keyHeld) {
    const [best] = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    keyKeeper.set(k, best[0]);
  }
  for (let t = 0; t < problem.ids.length; t++) {
    const k = problem.key[t];
    if (k >= 0 && keyKeeper.has(k)) keeper[t] = keyKeeper.get(k);
  }
  return keeper;
}

function merge(
  problem: Problem,
  cordoned: ReadonlySet<string>,
  keeper: Array<string | undefined>,
  inner: Plan,
): Plan {
  const result: Plan = {
    assignment: Object.assign(Object.create(null), inner.assignment),
    add: Object.assign(Object.create(null), inner.add),
    remove: Object.assign(Object.create(null), inner.remove),
    unassigned: inner.unassigned,
    reasons: Object.assign(Object.create(null), inner.reasons),
    moved: inner.moved,
  };
  const holds = new Map<string, Set<string>>();
  for (const listing of problem.current) {
    const ids = holds.get(listing.worker) ?? new Set<string>();
    for (const id of listing.ids) ids.add(id);
    holds.set(listing.worker, ids);
  }
  for (const worker of [...cordoned].sort()) result.assignment[worker] = [];
  for (const t of problem.order) {
    const worker = keeper[t];
    if (worker === undefined) continue;
    const id = problem.ids[t];
    result.assignment[worker].push(id);
    if (holds.get(worker)?.has(id)) continue;
    (result.add[worker] ??= []).push(id);
    if ([...holds.values()].some((ids) => ids.has(id))) result.moved++;
  }
  return result;
}

function uncordonedSpec(worker: string | WorkerSpec): string | WorkerSpec {
  if (typeof worker === "string") return worker;
  const { cordoned: _cordoned, ...spec } = worker;
  return spec;
}

function removeAll(current: ReadonlyMap<string, readonly string[]>): Record<string, string[]> {
  const remove: Record<string, string[]> = Object.create(null);
  for (const [worker, ids] of current) remove[worker] = [...new Set(ids)];
  return remove;
}
