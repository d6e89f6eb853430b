import { planAroundCordons } from "./cordon.js";
import { placeKeyed } from "./keyed.js";
import { placeUnkeyed } from "./least-load.js";
import { placeConstrained } from "./constrained.js";
import { inRollout, planRollout } from "./rollout.js";
import { type Constraints, indexConstraints } from "./constraints.js";
import type { Plan, PlanInput, UnassignedReason } from "./types.js";
import type { Placement, Problem } from "./model.js";
import { indexInput } from "./validate.js";

/**
 * Turns the online workers, the generated tasks and the current assignment into the target assignment
 * and its diff. Pure and deterministic: no I/O, no clock, no randomness; ties are broken by stable
 * hashes of names, so the order of `workers` does not matter. Keyed tasks are placed first (keyed.ts),
 * then the rest is balanced per group around them (least-load.ts).
 * @throws PlanInputError naming the culprit; never returns a partial plan.
 */
export function plan(input: PlanInput): Plan {
  // Two or more rollout generations online: moves go to the newest first (rollout.ts).
  if (inRollout(input)) return planRollout(input);
  if (input?.workers?.some?.((worker) => typeof worker === "object" && worker?.cordoned)) {
    return planAroundCordons(input, plan);
  }
  const problem = indexInput(input);
  const constraints = indexConstraints(problem, input.tasks);
  const workerCount = problem.workers.length;
  const placement: Placement = {
    target: new Int32Array(problem.ids.length).fill(-1),
    load: new Float64Array(workerCount),
    keyedLoad: new Float64Array(workerCount),
  };
  const reasons: Array<UnassignedReason | undefined> = new Array(problem.ids.length);
  if (constraints) {
    // Room is admitted by priority; a task that a constraint (not capacity) keeps out gives its room back.
    const excluded = new Uint8Array(problem.ids.length);
    for (let round = 0; ; round++) {
      for (let t = 0; t < reasons.length; t++) if (!excluded[t]) reasons[t] = undefined;
      placement.target.fill(-1);
      placement.load.fill(0);
      const placedOut = placeConstrained(problem, constraints, admit(problem, excluded), placement, reasons);
      let changed = false;
      reasons.forEach((reason, t) => {
        if (reason && reason.kind !== "capacity" && !excluded[t]) {
          excluded[t] = 1;
          changed = true;
        }
      });
      // Without capacities admission takes every task, and tasks left out before placing (no eligible
      // worker, a key's conflict, an antiKey's excess) played no part in it: another round would
      // place the rest exactly as this one did.
      if (!changed || round === 2 || (!problem.hasCapacity && !placedOut)) break;
    }
    const constrainedLoad = placement.load.slice();
    const free = admit(problem, constraints.constrained, placement.target);
    const room = Float64Array.from(problem.capacity, (c, w) => c - constrainedLoad[w]);
    placeKeyed({ ...problem, capacity: room }, free, placement);
    for (let w = 0; w < workerCount; w++) placement.keyedLoad[w] += constrainedLoad[w];
    placeUnkeyed(problem, free, placement, constraints.constrained);
    topUp(problem, constraints, reasons, placement);
  } else {
    const admitted = admit(problem);
    placeKeyed(problem, admitted, placement);
    placeUnkeyed(problem, admitted, placement);
  }
  if (problem.hasCapacity) placeLeftovers(problem, constraints?.constrained, placement);
  return describe(problem, placement.target, reasons);
}

/** Constrained tasks that admission left out get the room the others did not use. */
function topUp(
  problem: Problem,
  constraints: Constraints,
  reasons: Array<UnassignedReason | undefined>,
  out: Placement,
): void {
  const { constrained } = constraints;
  const waiting = (t: number) => constrained[t] === 1 && out.target[t] < 0 && reasons[t] === undefined;
  if (!problem.hasCapacity || !problem.order.some(waiting)) return;
  const mask = new Uint8Array(problem.ids.length);
  for (let t = 0; t < mask.length; t++) {
    if (waiting(t)) mask[t] = 1;
    else if (constrained[t] && out.target[t] >= 0) {
      mask[t] = 1;
      // Placed again (pinned) by the pass below.
      out.load[out.target[t]] -= problem.weight[t];
    }
  }
  placeConstrained(problem, constraints, mask, out, reasons, out.target.slice());
}

/**
 * Tasks without a constraint that admission or balancing left out (admission counts the fleet's total
 * room, not its fragments; the weighted pass keeps shares within the largest weight even where a full
 * worker holds the smallest) go, a key's tasks together, where they still fit: only the room left
 * decides "capacity".
 */
function placeLeftovers(problem: Problem, constrained: Uint8Array | undefined, out: Placement): void {
  const keyPlaced = new Uint8Array(problem.keyCount);
  const keySize = new Float64Array(problem.keyCount);
  for (let t = 0; t < problem.ids.length; t++) {
    const k = problem.key[t];
    if (k < 0) continue;
    keySize[k] += problem.weight[t];
    if (out.target[t] >= 0 || constrained?.[t]) keyPlaced[k] = 1;
  }
  for (const t of problem.order) {
    const k = problem.key[t];
    if (out.target[t] >= 0 || constrained?.[t] || (k >= 0 && keyPlaced[k])) continue;
    const size = k >= 0 ? keySize[k] : problem.weight[t];
    let best = -1;
    for (let w = 0; w < problem.workers.length; w++) {
      const room = problem.capacity[w] - out.load[w];
      if (room + 1e-9 >= size && (best < 0 || room > problem.capacity[best] - out.load[best])) best = w;
    }
    if (best < 0) continue;
    out.load[best] += size;
    if (k < 0) out.target[t] = best;
    else {
      keyPlaced[k] = 1;
      for (let u = 0; u < problem.ids.length; u++) if (problem.key[u] === k) out.target[u] = best;
    }
  }
}

/**
 * Which tasks the fleet's total capacity can take, highest priority first (a key's tasks together, at
 * its top priority). Placement may still leave some out when capacity is fragmented. Tasks marked in
 * `skip` are not admitted and take no room, unless `placed` places them: then they take their room at
 * their priority (they were placed before the others).
 */
function admit(problem: Problem, skip?: Uint8Array, placed?: Int32Array): Uint8Array {
  const admitted = new Uint8Array(problem.ids.length).fill(1);
  if (skip) for (let t = 0; t < admitted.length; t++) if (skip[t]) admitted[t] = 0;
  if (!problem.hasCapacity) return admitted;
  let room = problem.capacity.reduce((sum, c) => sum + c, 0);
  if (room === Number.POSITIVE_INFINITY) return admitted;
  const keySize = new Float64Array(problem.keyCount);
  for (let t = 0; t < problem.ids.length; t++)
    if (problem.key[t] >= 0) keySize[problem.key[t]] += problem.weight[t];
  const keyDecision = new Int8Array(problem.keyCount).fill(-1);
  for (const t of problem.order) {
    if (skip?.[t]) {
      if (placed && placed[t] >= 0) room -= problem.weight[t];
      continue;
    }
    const k = problem.key[t];
    if (k >= 0 && keyDecision[k] >= 0) {
      admitted[t] = keyDecision[k];
      continue;
    }
    const need = k >= 0 ? keySize[k] : problem.weight[t];
    const fits = need <= room + 1e-9 * Math.max(1, room);
    if (fits) room -= need;
    admitted[t] = fits ? 1 : 0;
    if (k >= 0) keyDecision[k] = admitted[t];
  }
  return admitted;
}

const CAPACITY: UnassignedReason = { kind: "capacity", text: "capacity" };

function describe(problem: Problem, target: Int32Array, why: Array<UnassignedReason | undefined>): Plan {
  const { ids, workers, order } = problem;
  // Lists allocated at their final length: a million pushes would leave their outgrown copies behind.
  const sizes = new Int32Array(workers.length + 1);
  for (let t = 0; t < target.length; t++) sizes[target[t] + 1]++;
  const lists: string[][] = workers.map((_, w) => new Array<string>(sizes[w + 1]));
  const unassigned = new Array<string>(sizes[0]);
  const filled = new Int32Array(workers.length + 1);
  const reasons: Record<string, UnassignedReason> = Object.create(null);
  for (let i = 0; i < order.length; i++) {
    const t = order[i];
    const w = target[t];
    if (w >= 0) lists[w][filled[w + 1]++] = ids[t];
    else {
      unassigned[filled[0]++] = ids[t];
      reasons[ids[t]] = why[t] ?? CAPACITY;
    }
  }
  const assignment: Record<string, string[]> = Object.create(null);
  for (let w = 0; w < workers.length; w++) assignment[workers[w]] = lists[w];
  const settled = new Uint8Array(ids.length);
  const listed = new Uint8Array(ids.length);
  const remove: Record<string, string[]> = Object.create(null);
  // A listing's stale ids once each, in order: generated ones marked by listing number, others in a Set.
  const staleIn = new Int32Array(ids.length);
  problem.current.forEach((listing, number) => {
    let stale: string[] | undefined;
    let unknown: Set<string> | undefined;
    const { tasks } = listing;
    for (let i = 0; i < tasks.length; i++) {
      const t = tasks[i];
      if (t >= 0) {
        listed[t] = 1;
        if (listing.index >= 0 && target[t] === listing.index) {
          settled[t] = 1;
          continue;
        }
        if (staleIn[t] === number + 1) continue;
        staleIn[t] = number + 1;
      } else {
        if (!(i in listing.ids)) continue; // a hole in the list
        if (unknown?.has(listing.ids[i])) continue;
        (unknown ??= new Set()).add(listing.ids[i]);
      }
      (stale ??= []).push(listing.ids[i]);
    }
    if (stale) remove[listing.worker] = stale;
  });
  // Per worker its tasks to add; the record lists workers in the order their first task comes.
  const adds: Array<string[] | undefined> = new Array(workers.length);
  const addOrder: number[] = [];
  let moved = 0;
  for (let i = 0; i < order.length; i++) {
    const t = order[i];
    const w = target[t];
    if (w < 0 || settled[t]) continue;
    let list = adds[w];
    if (list === undefined) {
      list = adds[w] = [];
      addOrder.push(w);
    }
    list.push(ids[t]);
    if (listed[t]) moved++;
  }
  const add: Record<string, string[]> = Object.create(null);
  for (const w of addOrder) add[workers[w]] = adds[w] as string[];
  return { assignment, add, remove, unassigned, reasons, moved };
}
