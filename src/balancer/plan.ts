import { planAroundCordons } from "./cordon.js";
import { placeKeyed } from "./keyed.js";
import { placeUnkeyed } from "./least-load.js";
import type { Plan, PlanInput } from "./types.js";
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
  if (input?.workers?.some?.((worker) => typeof worker === "object" && worker?.cordoned)) {
    return planAroundCordons(input, plan);
  }
  const problem = indexInput(input);
  const workerCount = problem.workers.length;
  const placement: Placement = {
    target: new Int32Array(problem.ids.length).fill(-1),
    load: new Float64Array(workerCount),
    keyedLoad: new Float64Array(workerCount),
  };
  const admitted = admit(problem);
  placeKeyed(problem, admitted, placement);
  placeUnkeyed(problem, admitted, placement);
  return describe(problem, placement.target);
}

/**
 * Which tasks the fleet's total capacity can take, highest priority first (a key's tasks together, at
 * its top priority). Placement may still leave some out when capacity is fragmented.
 */
function admit(problem: Problem): Uint8Array {
  const admitted = new Uint8Array(problem.ids.length).fill(1);
  if (!problem.hasCapacity) return admitted;
  let room = problem.capacity.reduce((sum, c) => sum + c, 0);
  if (room === Number.POSITIVE_INFINITY) return admitted;
  const keySize = new Float64Array(problem.keyCount);
  for (let t = 0; t < problem.ids.length; t++)
    if (problem.key[t] >= 0) keySize[problem.key[t]] += problem.weight[t];
  const keyDecision = new Int8Array(problem.keyCount).fill(-1);
  for (const t of problem.order) {
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

function describe(problem: Problem, target: Int32Array): Plan {
  const { ids, workers } = problem;
  const assignment: Record<string, string[]> = Object.create(null);
  for (const worker of workers) assignment[worker] = [];
  const unassigned: string[] = [];
  for (const t of problem.order) {
    if (target[t] >= 0) assignment[workers[target[t]]].push(ids[t]);
    else unassigned.push(ids[t]);
  }
  const settled = new Uint8Array(ids.length);
  const listed = new Uint8Array(ids.length);
  const remove: Record<string, string[]> = Object.create(null);
  for (const listing of problem.current) {
    let stale: Set<string> | undefined;
    listing.tasks.forEach((t, i) => {
      if (t >= 0) {
        listed[t] = 1;
        if (listing.index >= 0 && target[t] === listing.index) {
          settled[t] = 1;
          return;
        }
      }
      stale ??= new Set();
      stale.add(listing.ids[i]);
    });
    if (stale) remove[listing.worker] = [...stale];
  }
  const add: Record<string, string[]> = Object.create(null);
  let moved = 0;
  for (const t of problem.order) {
    if (target[t] < 0 || settled[t]) continue;
    const worker = workers[target[t]];
    if (add[worker] === undefined) add[worker] = [];
    add[worker].push(ids[t]);
    if (listed[t]) moved++;
  }
  return { assignment, add, remove, unassigned, moved };
}
