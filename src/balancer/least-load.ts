import { allocateCeilings } from "./ceilings.js";
import { hashString } from "./hash.js";
import type { GroupTasks, Placement, Problem } from "./model.js";
import { placeWeightedGroups } from "./weighted.js";

/**
 * Per-group least-load placement of the tasks without a key, after the keyed ones.
 *
 * Groups whose tasks all weigh 1 are balanced exactly: every worker gets the floor of its group's
 * share plus at most one (a "ceiling"), every worker's total is within one of every other's, and the
 * ceilings go where they save the most moves (see ceilings.ts); ties go to workers with less keyed
 * load, then by a hash of the worker's name. Each worker keeps its highest-priority tasks up
 * to its target; only the rest move. Keyed load counts only as a tie-break and against capacity: the
 * "differ by at most one" rule is about tasks without a key.
 *
 * Weighted groups come next (weighted.ts).
 *
 * Capacities: a worker that cannot take its share takes as much as it can and leaves the balance to
 * the others; what fits nowhere stays unplaced, lowest priority first.
 */
export function placeUnkeyed(problem: Problem, admitted: Uint8Array, out: Placement): void {
  const groups = collectGroups(problem, admitted);
  const unit = groups.filter((group) => group.unit);
  if (unit.length > 0) placeUnitGroups(problem, unit, out);
  const weighted = groups.filter((group) => !group.unit);
  const largestWeight = weighted.reduce((largest, group) => Math.max(largest, group.largest), 1);
  if (weighted.length > 0) placeWeightedGroups(problem, weighted, largestWeight, out);
}

function collectGroups(problem: Problem, admitted: Uint8Array): GroupTasks[] {
  const byGroup: GroupTasks[] = [];
  for (const t of problem.order) {
    if (problem.key[t] >= 0 || !admitted[t]) continue;
    const g = problem.group[t];
    const weight = problem.weight[t];
    byGroup[g] ??= { group: g, tasks: [], unit: true, total: 0, largest: 0 };
    const entry = byGroup[g];
    entry.tasks.push(t);
    entry.total += weight;
    entry.largest = Math.max(entry.largest, weight);
    if (weight !== 1) entry.unit = false;
  }
  return byGroup.filter((entry) => entry !== undefined);
}

interface Shares {
  floor: number[];
  remainder: number[];
  /** Every worker's total is floorTotal + k or floorTotal + k + 1; exactly m get the +1. */
  floorTotal: number;
  k: number;
  m: number;
}

function shares(pools: number[][], workers: number): Shares {
  const floor = pools.map((tasks) => Math.floor(tasks.length / workers));
  const remainder = pools.map((tasks, i) => tasks.length - floor[i] * workers);
  const extra = remainder.reduce((sum, r) => sum + r, 0);
  const k = Math.floor(extra / workers);
  return { floor, remainder, floorTotal: floor.reduce((sum, q) => sum + q, 0), k, m: extra - k * workers };
}

function placeUnitGroups(problem: Problem, groups: GroupTasks[], out: Placement): void {
  const workerCount = problem.workers.length;
  const room = new Float64Array(workerCount);
  for (let w = 0; w < workerCount; w++) room[w] = Math.floor(problem.capacity[w] - out.load[w] + 1e-9);
  let pools = groups.map((group) => group.tasks);
  if (problem.hasCapacity) pools = dropBeyondRoom(problem, pools, room);
  const saturated = new Uint8Array(workerCount);
  let active = problem.workers.map((_, w) => w).filter((w) => room[w] >= 1);
  // Water-filling: a worker with no room for its fair share takes what it can and leaves the game.
  while (active.length > 0) {
    const share = shares(pools, active.length);
    const level = share.floorTotal + share.k;
    const short = active.filter((w) => room[w] < level);
    const exact = active.filter((w) => room[w] === level);
    const full = short.length > 0 ? short : active.length - exact.length < share.m ? exact : [];
    if (full.length === 0) break;
    for (const w of full) saturated[w] = 1;
    fillSaturated(problem, full, pools, share.floor, room, out);
    pools = pools.map((tasks) => tasks.filter((t) => out.target[t] < 0));
    active = active.filter((w) => !saturated[w]);
  }
  if (active.length > 0) balance(problem, pools, active, room, out);
}

/** Leaves the lowest-priority tasks unplaced when the fleet has less room than there are tasks. */
function dropBeyondRoom(problem: Problem, pools: number[][], room: Float64Array): number[][] {
  const total = pools.reduce((sum, tasks) => sum + tasks.length, 0);
  let left = room.reduce((sum, r) => sum + Math.max(0, r), 0);
  if (left >= total) return pools;
  const inPool = new Uint8Array(problem.ids.length);
  for (const tasks of pools) for (const t of tasks) inPool[t] = 1;
  for (const t of problem.order) {
    if (!inPool[t]) continue;
    if (left > 0) left--;
    else inPool[t] = 0;
  }
  return pools.map((tasks) => tasks.filter((t) => inPool[t]));
}

/**
 * Gives each worker in `full` exactly its room: its own tasks first (highest priority first), then
 * round-robin over groups (at most one above a group's floor while that lasts), tasks nobody else holds first.
 */
function fillSaturated(
  problem: Problem,
  full: number[],
  pools: number[][],
  floor: number[],
  room: Float64Array,
  out: Placement,
): void {
  const inFull = new Int32Array(problem.workers.length).fill(-1);
  full.forEach((w, i) => {
    inFull[w] = i;
  });
  const own: number[][] = full.map(() => []);
  const groupOf = new Int32Array(problem.ids.length);
  pools.forEach((tasks, i) => {
    for (const t of tasks) {
      groupOf[t] = i;
      const h = problem.holder[t];
      if (h >= 0 && inFull[h] >= 0) own[inFull[h]].push(t);
    }
  });
  const free = pools.map(() => 0);
  const taken = pools.map((tasks) => tasks.length - 1);
  const nextTask = (i: number): number => {
    const tasks = pools[i];
    while (free[i] < tasks.length) {
      const t = tasks[free[i]++];
      const h = problem.holder[t];
      if (out.target[t] < 0 && (h < 0 || inFull[h] >= 0)) return t;
    }
    while (taken[i] >= 0) {
      const t = tasks[taken[i]--];
      if (out.target[t] < 0) return t;
    }
    return -1;
  };
  const rank = new Int32Array(problem.ids.length);
  problem.order.forEach((t, position) => {
    rank[t] = position;
  });
  const left = full.map((w) => room[w]);
  const count = full.map(() => pools.map(() => 0));
  const give = (i: number, t: number) => {
    out.target[t] = full[i];
    out.load[full[i]] += 1;
    count[i][groupOf[t]]++;
    left[i]--;
  };
  full.forEach((_, i) => {
    own[i].sort((a, b) => rank[a] - rank[b]);
    for (const t of own[i]) if (left[i] > 0) give(i, t);
  });
  full.forEach((worker, i) => {
    const start = hashString(problem.workers[worker]) % pools.length;
    for (const capped of [true, false]) {
      for (let progress = true; left[i] > 0 && progress;) {
        progress = false;
        for (let j = 0; j < pools.length && left[i] > 0; j++) {
          const g = (start + j) % pools.length;
          if (capped && count[i][g] > floor[g]) continue;
          const t = nextTask(g);
          if (t >= 0) {
            give(i, t);
            progress = true;
          }
        }
      }
    }
  });
}

/** The exact per-group and total balance over `active` workers, with the fewest moves. */
function balance(
  problem: Problem,
  pools: number[][],
  active: number[],
  room: Float64Array,
  out: Placement,
): void {
  const columns = active.length;
  const column = new Int32Array(problem.workers.length).fill(-1);
  active.forEach((w, c) => {
    column[w] = c;
  });
  const columnOf = (t: number) => (problem.holder[t] >= 0 ? column[problem.holder[t]] : -1);
  const share = shares(pools, columns);
  const workerHash = active.map((w) => hashString(problem.workers[w]));
  const preference = Int32Array.from(active, (_, c) => c).sort(
    (a, b) => out.keyedLoad[active[a]] - out.keyedLoad[active[b]] || workerHash[a] - workerHash[b] || a - b,
  );
  const rows: number[] = [];
  const rowOf = new Int32Array(pools.length).fill(-1);
  const beneficial: number[][] = [];
  const count = new Int32Array(columns);
  pools.forEach((tasks, i) => {
    if (share.remainder[i] === 0) return;
    for (const t of tasks) if (columnOf(t) >= 0) count[columnOf(t)]++;
    const holdsMore: number[] = [];
    for (const t of tasks) {
      const c = columnOf(t);
      if (c < 0) continue;
      if (count[c] > share.floor[i]) holdsMore.push(c);
      count[c] = 0;
    }
    rowOf[i] = rows.push(i) - 1;
    beneficial.push(holdsMore);
  });
  const roomForExtra = Uint8Array.from(active, (w) => (room[w] > share.floorTotal + share.k ? 1 : 0));
  const ceilings = allocateCeilings({
    columns,
    remainder: rows.map((i) => share.remainder[i]),
    beneficial,
    preference,
    k: share.k,
    m: share.m,
    roomForExtra,
  });
  const target = new Int32Array(columns);
  const kept = new Int32Array(columns);
  pools.forEach((tasks, i) => {
    target.fill(share.floor[i]);
    kept.fill(0);
    if (rowOf[i] >= 0) for (const c of ceilings[rowOf[i]]) target[c]++;
    const leftovers: number[] = [];
    for (const t of tasks) {
      const c = columnOf(t);
      if (c >= 0 && kept[c] < target[c]) {
        out.target[t] = active[c];
        out.load[active[c]] += 1;
        kept[c]++;
      } else {
        leftovers.push(t);
      }
    }
    let c = 0;
    for (const t of leftovers) {
      while (kept[c] >= target[c]) c++;
      out.target[t] = active[c];
      out.load[active[c]] += 1;
      kept[c]++;
    }
  });
}
