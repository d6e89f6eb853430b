import { hashString, pairHash } from "./hash.js";
import type { Placement, Problem } from "./model.js";

/**
 * Key affinity by bounded-load rendezvous hashing, sticky first:
 * 1. a key stays on the worker that holds (most of) it while that worker is online and its keyed load
 *    stays within 1.25 × average + the largest key (the spec's bound, so nothing moves for balance's sake);
 * 2. every other key goes, largest first within a priority, to its highest-scoring worker whose keyed load
 *    would stay within 1.25 × average (or that has none yet), else to the least-loaded worker;
 * 3. a worker below 0.75 × average − the largest key (a newcomer, typically) takes keys from the
 *    heaviest worker above the average, each time the key that ranks it highest, until it reaches the
 *    average: a join moves about 1/N of the keyed load, onto the newcomer (plus, rarely, keys of a
 *    worker that the smaller average leaves above the bound).
 * Loads are task weights; a worker's capacity is never exceeded; a key that fits nowhere stays unplaced.
 */
export function placeKeyed(problem: Problem, admitted: Uint8Array, out: Placement): void {
  const workerCount = problem.workers.length;
  const keys = collectKeys(problem, admitted);
  if (keys.order.length === 0 || workerCount === 0) return;
  const { size, taskStart, tasks } = keys;
  const keyHash = problem.keyNames.map(hashString);
  const workerHash = problem.workers.map(hashString);
  const capacity = problem.capacity;
  const load = out.keyedLoad;
  const owner = new Int32Array(problem.keyCount).fill(-1);
  let total = 0;
  let largest = 0;
  for (const k of keys.order) {
    total += size[k];
    largest = Math.max(largest, size[k]);
  }
  const average = total / workerCount;
  const fits = (worker: number, k: number, limit: number) =>
    load[worker] + size[k] <= Math.min(limit, capacity[worker]);
  const give = (k: number, worker: number) => {
    owner[k] = worker;
    load[worker] += size[k];
  };

  const orphans: number[] = [];
  for (const k of keys.order) {
    const home = keys.home[k];
    if (home >= 0 && fits(home, k, 1.25 * average + largest)) give(k, home);
    else orphans.push(k);
  }

  const rank = new Int32Array(problem.keyCount);
  keys.order.forEach((k, position) => {
    rank[k] = position;
  });
  orphans.sort((a, b) => keys.priority[b] - keys.priority[a] || size[b] - size[a] || rank[a] - rank[b]);
  for (const k of orphans) {
    let best = -1;
    let bestScore = -1;
    let lightest = -1;
    for (let w = 0; w < workerCount; w++) {
      if (!fits(w, k, Number.POSITIVE_INFINITY)) continue;
      if (lightest < 0 || load[w] < load[lightest]) lightest = w;
      if (load[w] > 0 && !fits(w, k, 1.25 * average)) continue;
      const score = pairHash(keyHash[k], workerHash[w]);
      if (score > bestScore) {
        best = w;
        bestScore = score;
      }
    }
    if (best >= 0 || lightest >= 0) give(k, best >= 0 ? best : lightest);
  }

  relieveOverloaded(
    keys.order,
    { load, size, owner, capacity, keyHash, workerHash },
    average,
    1.25 * average + largest,
  );

  relieveStarved(
    { load, size, owner, capacity, keyHash, workerHash, placed: keys.order.filter((k) => owner[k] >= 0) },
    average,
    0.75 * average - largest,
  );

  for (const k of keys.order) {
    const worker = owner[k];
    if (worker < 0) continue;
    for (let i = taskStart[k]; i < taskStart[k + 1]; i++) out.target[tasks[i]] = worker;
    out.load[worker] += size[k];
  }
}

interface KeyState {
  load: Float64Array;
  size: Float64Array;
  owner: Int32Array;
  capacity: Float64Array;
  keyHash: number[];
  workerHash: number[];
  placed: number[];
}

/**
 * A key that had to go to an already-full worker (nowhere else had room) can push that worker past the
 * bound under which keys stay. Keys that stayed there move, where another worker has room by the
 * orphans' rule, until it is back under the bound: otherwise the next plan, seeing the overload,
 * would evict a different key than this one kept, and a plan would not be its own fixed point.
 */
function relieveOverloaded(
  order: number[],
  state: Omit<KeyState, "placed">,
  average: number,
  stayBound: number,
): void {
  const { load, size, owner, capacity, keyHash, workerHash } = state;
  for (const k of order) {
    const from = owner[k];
    if (from < 0 || load[from] <= stayBound) continue;
    let best = -1;
    let bestScore = -1;
    for (let w = 0; w < load.length; w++) {
      if (w === from || load[w] + size[k] > capacity[w]) continue;
      // The orphans' rule: within 1.25 × average, or a worker with no key yet.
      if (load[w] > 0 && load[w] + size[k] > 1.25 * average) continue;
      const score = pairHash(keyHash[k], workerHash[w]);
      if (score > bestScore) {
        best = w;
        bestScore = score;
      }
    }
    if (best < 0) continue;
    owner[k] = best;
    load[from] -= size[k];
    load[best] += size[k];
  }
}

/** Lifts every worker below `floor` towards `average` with keys from the heaviest workers above it. */
function relieveStarved(state: KeyState, average: number, floor: number): void {
  const { load, size, owner, capacity, keyHash, workerHash } = state;
  const workerCount = load.length;
  const starved: number[] = [];
  for (let w = 0; w < workerCount; w++) if (load[w] < floor) starved.push(w);
  if (starved.length === 0) return;
  starved.sort((a, b) => load[a] - load[b] || a - b);
  const keysOf: number[][] = Array.from({ length: workerCount }, () => []);
  for (const k of state.placed) keysOf[owner[k]].push(k);
  for (const taker of starved) {
    while (load[taker] < average) {
      let donor = 0;
      for (let w = 1; w < workerCount; w++) if (load[w] > load[donor]) donor = w;
      if (load[donor] <= average) break;
      const pick = bestKeyFor(taker, keysOf[donor]);
      if (pick < 0) break;
      const list = keysOf[donor];
      list[list.indexOf(pick)] = list[list.length - 1];
      list.pop();
      keysOf[taker].push(pick);
      owner[pick] = taker;
      load[donor] -= size[pick];
      load[taker] += size[pick];
    }
  }

  function bestKeyFor(taker: number, candidates: number[]): number {
    let best = -1;
    let bestScore = -1;
    for (const k of candidates) {
      if (load[taker] + size[k] > capacity[taker]) continue;
      const score = pairHash(keyHash[k], workerHash[taker]);
      if (score > bestScore) {
        best = k;
        bestScore = score;
      }
    }
    return best;
  }
}

/** Admitted keyed tasks grouped by key (CSR), each key's size, top priority and current home. */
function collectKeys(problem: Problem, admitted: Uint8Array) {
  const keyCount = problem.keyCount;
  const size = new Float64Array(keyCount);
  const priority = new Float64Array(keyCount);
  const count = new Int32Array(keyCount + 1);
  const order: number[] = [];
  for (const t of problem.order) {
    const k = problem.key[t];
    if (k < 0 || !admitted[t]) continue;
    if (count[k + 1]++ === 0) {
      order.push(k);
      priority[k] = problem.priority[t];
    }
    size[k] += problem.weight[t];
  }
  const taskStart = new Int32Array(keyCount + 1);
  for (let k = 0; k < keyCount; k++) taskStart[k + 1] = taskStart[k] + count[k + 1];
  const tasks = new Int32Array(taskStart[keyCount]);
  const fill = taskStart.slice(0, keyCount);
  for (const t of problem.order) {
    const k = problem.key[t];
    if (k >= 0 && admitted[t]) tasks[fill[k]++] = t;
  }
  const home = new Int32Array(keyCount).fill(-1);
  const held = new Float64Array(problem.workers.length);
  for (const k of order) {
    for (let i = taskStart[k]; i < taskStart[k + 1]; i++) {
      const h = problem.holder[tasks[i]];
      if (h < 0) continue;
      held[h] += problem.weight[tasks[i]];
      if (home[k] < 0 || held[h] > held[home[k]] || (held[h] === held[home[k]] && h < home[k])) home[k] = h;
    }
    for (let i = taskStart[k]; i < taskStart[k + 1]; i++) {
      const h = problem.holder[tasks[i]];
      if (h >= 0) held[h] = 0;
    }
  }
  return { order, size, priority, taskStart, tasks, home };
}
