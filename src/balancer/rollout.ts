/**
 * Rollout-aware planning. While the online workers carry two or more rollout generations (a rolling
 * update is under way), a task stays on the live worker that holds it, and only the tasks that must
 * move (their worker left or drains, they are new, or they no longer fit where they are) are placed:
 * on the newest generation first, up to a balanced share, then on older ones. A rolling update (start
 * a new worker, then stop an old one, repeat) so moves each task once, from an old worker to a new
 * one, and ends balanced; once one generation is left the plain planner takes over again.
 */
import { indexConstraints } from "./constraints.js";
import { PlanInputError } from "./errors.js";
import { formatSelector, matches } from "./labels.js";
import { Layout } from "./rollout-layout.js";
import { placeOrphans } from "./rollout-orphans.js";
import { BalancedShares } from "./rollout-shares.js";
import type { Problem } from "./model.js";
import type { Plan, PlanInput, UnassignedReason, WorkerSpec } from "./types.js";
import { indexInput } from "./validate.js";

const MAX_GENERATION_LENGTH = 200;

/** Why `value` cannot be a rollout generation (1–200 characters, no control characters), or undefined. */
export function generationProblem(value: unknown): string | undefined {
  if (typeof value !== "string") return "must be a string";
  if (value.length === 0) return "must not be empty";
  if (value.length > MAX_GENERATION_LENGTH) return `must be at most ${MAX_GENERATION_LENGTH} characters`;
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 0x20 || (code >= 0x7f && code <= 0x9f)) return "must not contain control characters";
  }
  return undefined;
}

/** A worker's generation; a worker without one is of generation "". */
function generationOf(worker: string | WorkerSpec): string {
  if (typeof worker !== "object" || worker === null || worker.generation === undefined) return "";
  const problem = generationProblem(worker.generation);
  if (problem) throw new PlanInputError(`worker ${JSON.stringify(worker.name)}`, `generation ${problem}`);
  return worker.generation;
}

/** Whether the online workers carry two or more generations: then `planRollout` plans. */
export function inRollout(input: PlanInput): boolean {
  if (!Array.isArray(input?.workers) || input.workers.length < 2) return false;
  const first = generationOf(input.workers[0]);
  return input.workers.some((worker) => generationOf(worker) !== first);
}

/**
 * The plan during a rollout. Every generated task a live worker holds stays there while it is
 * eligible (selector, spread label, antiKey, capacity; a key stays with the worker holding most of
 * it). The others are placed, highest priority first, on the newest generation's workers (the order
 * of `input.generations`, newest first; unlisted generations rank last) whose load of the task's group
 * and in total stays within the balanced share, the least loaded first; then on the next generation;
 * then, when no worker has a balanced share left, wherever capacity allows, newest first.
 * @throws PlanInputError naming the culprit, as `plan` does.
 */
export function planRollout(input: PlanInput): Plan {
  const problem = indexInput(input);
  indexConstraints(problem, input.tasks);
  if (input.generations !== undefined && !Array.isArray(input.generations)) {
    throw new PlanInputError("generations", "must be an array of generation names, newest first");
  }
  const newestFirst = new Map((input.generations ?? []).map((generation, i) => [generation, i] as const));
  const spec = new Map(
    input.workers.map((worker) => [typeof worker === "string" ? worker : worker.name, worker] as const),
  );
  const workerSpecs = problem.workers.map((name) => spec.get(name) as string | WorkerSpec);
  const rank = workerSpecs.map((worker) => newestFirst.get(generationOf(worker)) ?? newestFirst.size);
  const cordoned = workerSpecs.map((worker) => typeof worker === "object" && worker.cordoned === true);
  const layout = new Layout(problem, input.tasks);
  keepHeld(problem, layout);
  const receivers = problem.workers
    .map((_, w) => w)
    .filter((w) => !cordoned[w])
    .sort((a, b) => rank[a] - rank[b] || a - b);
  const tiers: number[][] = [];
  for (const w of receivers) {
    if (tiers.length > 0 && rank[tiers.at(-1)![0]] === rank[w]) tiers.at(-1)!.push(w);
    else tiers.push([w]);
  }
  layout.shares = new BalancedShares(
    problem,
    layout.load,
    layout.groupLoad,
    receivers,
    (t) => layout.target[t] < 0 || !cordoned[layout.target[t]],
    (t) => layout.size(layout.unit(t)),
  );
  placeOrphans(problem, layout, tiers, (unit) => whyNowhere(layout, unit, receivers));
  return describe(problem, layout);
}

/** Tasks stay on the live worker holding them while they are eligible and fit there, by priority. */
function keepHeld(problem: Problem, layout: Layout): void {
  const keyHolder = keyHolders(problem);
  const decided = new Uint8Array(problem.keyCount);
  for (const t of problem.order) {
    const k = problem.key[t];
    if (k >= 0 && decided[k]) continue;
    if (k >= 0) decided[k] = 1;
    const w = k >= 0 ? keyHolder[k] : problem.holder[t];
    const unit = layout.unit(t);
    if (w >= 0 && layout.eligible(unit, w) && layout.antiFree(unit, w) && layout.fits(w, layout.size(unit))) {
      layout.place(unit, w);
    }
  }
}

/** Per key, the online worker holding most of its tasks (ties: the first by name), or -1. */
function keyHolders(problem: Problem): Int32Array {
  const counts = new Map<number, Map<number, number>>();
  for (const listing of problem.current) {
    if (listing.index < 0) continue;
    for (const t of listing.tasks) {
      const k = t < 0 ? -1 : problem.key[t];
      if (k < 0) continue;
      const perWorker = counts.get(k) ?? new Map<number, number>();
      perWorker.set(listing.index, (perWorker.get(listing.index) ?? 0) + 1);
      counts.set(k, perWorker);
    }
  }
  const holder = new Int32Array(problem.keyCount).fill(-1);
  for (const [k, perWorker] of counts) {
    let best = -1;
    for (const [w, n] of perWorker) {
      const most = best < 0 ? -1 : (perWorker.get(best) as number);
      if (n > most || (n === most && w < best)) best = w;
    }
    holder[k] = best;
  }
  return holder;
}

function whyNowhere(layout: Layout, unit: readonly number[], receivers: readonly number[]): UnassignedReason {
  if (receivers.length === 0) return { kind: "capacity", text: "capacity: every worker is cordoned" };
  const labelsOf = (w: number) => layout.problem.labels[w];
  for (const t of unit) {
    const { selector, spread } = layout.tasks[t];
    if (selector !== undefined && !receivers.some((w) => matches(selector, labelsOf(w))))
      return { kind: "selector", text: `selector ${formatSelector(selector)}: no online worker matches` };
    if (spread !== undefined && !receivers.some((w) => Object.hasOwn(labelsOf(w) ?? {}, spread.label)))
      return { kind: "spread", text: `spread label ${spread.label}: no online worker has it` };
    const avoid = layout.problem.avoid?.get(t);
    if (avoid && receivers.every((w) => avoid.includes(w))) {
      const failedOn = avoid.map((w) => layout.problem.workers[w]).join(", ");
      return { kind: "failed", text: `failed on every eligible worker (${failedOn})` };
    }
  }
  const eligible = receivers.filter((w) => layout.eligible(unit, w));
  if (eligible.length === 0)
    return { kind: "selector", text: "selectors of one key: no online worker matches them all" };
  if (!eligible.some((w) => layout.antiFree(unit, w))) {
    const anti = unit.map((t) => layout.tasks[t].antiKey).find((a) => a !== undefined);
    return { kind: "antiKey", text: `antiKey ${anti}: every eligible worker already runs one` };
  }
  return { kind: "capacity", text: "capacity" };
}

/** The plan's lists from the placement: assignment and unassigned by priority, the diff against `current`. */
function describe(problem: Problem, layout: Layout): Plan {
  const { ids, workers } = problem;
  const { target } = layout;
  const assignment: Record<string, string[]> = Object.create(null);
  for (const worker of workers) assignment[worker] = [];
  const unassigned: string[] = [];
  const reasons: Record<string, UnassignedReason> = Object.create(null);
  for (const t of problem.order) {
    if (target[t] >= 0) assignment[workers[target[t]]].push(ids[t]);
    else {
      unassigned.push(ids[t]);
      reasons[ids[t]] = layout.reasons.get(t) ?? { kind: "capacity", text: "capacity" };
    }
  }
  const settled = new Uint8Array(ids.length);
  const listed = new Uint8Array(ids.length);
  const remove: Record<string, string[]> = Object.create(null);
  for (const listing of problem.current) {
    const stale = new Set<string>();
    listing.tasks.forEach((t, i) => {
      if (t >= 0) listed[t] = 1;
      if (t >= 0 && listing.index >= 0 && target[t] === listing.index) settled[t] = 1;
      else stale.add(listing.ids[i]);
    });
    if (stale.size > 0) remove[listing.worker] = [...stale];
  }
  const add: Record<string, string[]> = Object.create(null);
  let moved = 0;
  for (const t of problem.order) {
    if (target[t] < 0 || settled[t]) continue;
    (add[workers[target[t]]] ??= []).push(ids[t]);
    if (listed[t]) moved++;
  }
  return { assignment, add, remove, unassigned, reasons, moved };
}
