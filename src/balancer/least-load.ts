import { allocateCeilings } from "./ceilings.js";
import { hashString, pairHash } from "./hash.js";
import { IndexHeap, KeyedHeap } from "./heap.js";
import type { Placement, Problem } from "./validate.js";

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
 * Weighted groups come next, one at a time: workers keep their tasks up to the group's average plus
 * its largest weight, the rest go heaviest first to the worker with the lowest total among those light
 * enough in the group (see stickyLeastLoad). If the group's loads or the totals end up further apart than the largest weight, that is
 * retried keeping only up to the average (provably balanced within the group), and if the totals are
 * still too far apart the group is laid out afresh (longest first into bins, the heaviest bin to the
 * worker with the lowest total), which keeps every spread within the largest weight.
 *
 * Capacities: a worker that cannot take its share takes as much as it can and leaves the balance to
 * the others; what fits nowhere stays unplaced, lowest priority first.
 */
export function placeUnkeyed(problem: Problem, admitted: Uint8Array, out: Placement): void {
  const groups = collectGroups(problem, admitted);
  const unit = groups.filter((group) => group.unit);
  if (unit.length > 0) placeUnitGroups(problem, unit, out);
  const weighted = groups.filter((group) => !group.unit);
  const largestWeight = Math.max(1, ...weighted.map((group) => group.largest));
  if (weighted.length > 0) placeWeightedGroups(problem, weighted, largestWeight, out);
}

interface GroupTasks {
  group: number;
  /** Task numbers by priority, highest first. */
  tasks: number[];
  unit: boolean;
  total: number;
  largest: number;
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
      for (let progress = true; left[i] > 0 && progress; ) {
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

function placeWeightedGroups(
  problem: Problem,
  groups: GroupTasks[],
  largestWeight: number,
  out: Placement,
): void {
  const workerCount = problem.workers.length;
  const unitTotals = Float64Array.from(out.load, (load, w) => load - out.keyedLoad[w]);
  const totals = unitTotals.slice();
  const workerHash = problem.workers.map(hashString);
  const tieFor = (group: GroupTasks) => {
    const groupHash = hashString(`group:${group.group}`);
    return Uint32Array.from(workerHash, (h) => pairHash(groupHash, h));
  };
  const share = new Float64Array(workerCount);
  for (const group of groups) {
    share.fill(0);
    stickyLeastLoad(problem, group, share, totals, tieFor(group), out);
    levelGroup(problem, group, share, totals, out);
    for (let w = 0; w < workerCount; w++) totals[w] += share[w];
  }
  if (problem.hasCapacity || levelTotals(problem, groups, totals, largestWeight, out)) return;
  totals.set(unitTotals);
  for (const group of groups) {
    for (const t of group.tasks) {
      if (out.target[t] >= 0) out.load[out.target[t]] -= problem.weight[t];
      out.target[t] = -1;
    }
    share.fill(0);
    freshLayout(problem, group, share, totals, tieFor(group), out);
    for (let w = 0; w < workerCount; w++) totals[w] += share[w];
  }
}

/**
 * Keeps every task where it runs (capacity permitting); then places the new and orphaned ones heaviest
 * first, each on the worker with the lowest running total among those whose share would stay within
 * the group's largest weight of the smallest share.
 */
function stickyLeastLoad(
  problem: Problem,
  group: GroupTasks,
  share: Float64Array,
  totals: Float64Array,
  tie: Uint32Array,
  out: Placement,
): void {
  const { weight, capacity } = problem;
  const workerCount = problem.workers.length;
  const place = (t: number, w: number) => {
    out.target[t] = w;
    share[w] += weight[t];
    out.load[w] += weight[t];
  };
  const fits = (t: number, w: number) => out.load[w] + weight[t] <= capacity[w] * (1 + 1e-12);
  const pool: number[] = [];
  for (const t of group.tasks) {
    const h = problem.holder[t];
    if (h >= 0 && fits(t, h)) place(t, h);
    else pool.push(t);
  }
  const position = new Map(group.tasks.map((t, i) => [t, i]));
  pool.sort((a, b) => weight[b] - weight[a] || position.get(a)! - position.get(b)!);
  const byShare = new KeyedHeap();
  const waiting = new KeyedHeap();
  for (let w = 0; w < workerCount; w++) {
    byShare.push(share[w], w);
    waiting.push(share[w], w);
  }
  const eligible = new IndexHeap(
    (a, b) => (totals[a] + share[a] - totals[b] - share[b] || tie[a] - tie[b] || a - b) < 0,
  );
  const smallestShare = () => {
    while (byShare.topKey() !== share[byShare.topValue()]) byShare.pop();
    return byShare.topKey();
  };
  const tolerance = 1e-9 * Math.max(1, group.total);
  const skipped: number[] = [];
  for (const t of pool) {
    const threshold = smallestShare() + group.largest - weight[t] + tolerance;
    while (waiting.size > 0 && waiting.topKey() <= threshold) eligible.push(waiting.pop());
    let chosen = -1;
    while (eligible.size > 0 && chosen < 0) {
      const w = eligible.pop();
      if (fits(t, w)) chosen = w;
      else skipped.push(w);
    }
    for (const w of skipped) eligible.push(w);
    skipped.length = 0;
    if (chosen < 0) continue;
    place(t, chosen);
    byShare.push(share[chosen], chosen);
    waiting.push(share[chosen], chosen);
  }
}

/** The task of `candidates` lighter than `gap` and closest to half of it, allowed by `ok`; -1 if none. */
function pickMove(
  weight: Float64Array,
  candidates: Iterable<number>,
  gap: number,
  ok: (t: number) => boolean,
): number {
  let best = -1;
  for (const t of candidates) {
    if (weight[t] >= gap * (1 - 1e-12) || !ok(t)) continue;
    if (best < 0 || Math.abs(weight[t] - gap / 2) < Math.abs(weight[best] - gap / 2)) best = t;
  }
  return best;
}

/**
 * Moves single tasks from the fullest worker of the group to the lowest-total worker whose share stays
 * within the group's largest weight of the smallest, until all shares are that close. Each move lowers
 * the sum of squared shares, so it ends; without capacities it always gets there.
 */
function levelGroup(
  problem: Problem,
  group: GroupTasks,
  share: Float64Array,
  totals: Float64Array,
  out: Placement,
) {
  const { weight, capacity } = problem;
  const workerCount = problem.workers.length;
  const tolerance = 1e-9 * Math.max(1, group.total);
  const held = new Map<number, number[]>();
  for (const t of group.tasks) {
    const w = out.target[t];
    if (w >= 0) held.get(w)?.push(t) ?? held.set(w, [t]);
  }
  for (;;) {
    let fullest = 0;
    let emptiest = 0;
    for (let w = 1; w < workerCount; w++) {
      if (share[w] > share[fullest]) fullest = w;
      if (share[w] < share[emptiest]) emptiest = w;
    }
    const gap = share[fullest] - share[emptiest];
    if (gap <= group.largest + tolerance) return;
    const t = pickMove(weight, held.get(fullest) ?? [], gap, () => true);
    let receiver = -1;
    for (let w = 0; t >= 0 && w < workerCount; w++) {
      if (share[w] + weight[t] > share[emptiest] + group.largest + tolerance) continue;
      if (out.load[w] + weight[t] > capacity[w] * (1 + 1e-12)) continue;
      if (receiver < 0 || totals[w] + share[w] < totals[receiver] + share[receiver]) receiver = w;
    }
    if (receiver < 0) return;
    const list = held.get(fullest)!;
    list.splice(list.indexOf(t), 1);
    held.get(receiver)?.push(t) ?? held.set(receiver, [t]);
    out.target[t] = receiver;
    share[fullest] -= weight[t];
    share[receiver] += weight[t];
    out.load[fullest] -= weight[t];
    out.load[receiver] += weight[t];
  }
}

/**
 * Brings the totals within the largest weight by moving single tasks from the highest-total worker to
 * the lowest, each a task whose group stays balanced. False when it gets stuck (the caller then lays
 * the weighted groups out afresh). Each move lowers the sum of squared totals, so it ends.
 */
function levelTotals(
  problem: Problem,
  groups: GroupTasks[],
  totals: Float64Array,
  largestWeight: number,
  out: Placement,
): boolean {
  const { weight } = problem;
  const workerCount = problem.workers.length;
  const tolerance =
    1e-9 *
    Math.max(
      1,
      totals.reduce((a, b) => a + b, 0),
    );
  const position = new Int32Array(problem.groupCount);
  const shares = groups.map((group, i) => {
    position[group.group] = i;
    return new Map<number, number>();
  });
  const tasksOn: number[][] = Array.from({ length: workerCount }, () => []);
  groups.forEach((group, i) => {
    for (const t of group.tasks) {
      const w = out.target[t];
      shares[i].set(w, (shares[i].get(w) ?? 0) + weight[t]);
      tasksOn[w].push(t);
    }
  });
  /** Whether moving t from `from` to `to` keeps its group's shares within its largest weight. */
  const keepsGroup = (t: number, from: number, to: number) => {
    const i = position[problem.group[t]];
    const groupShares = shares[i];
    const moved = [(groupShares.get(from) ?? 0) - weight[t], (groupShares.get(to) ?? 0) + weight[t]];
    let low = Math.min(...moved);
    let high = Math.max(...moved);
    let others = 0;
    for (const [w, value] of groupShares) {
      if (w === from || w === to) continue;
      others++;
      low = Math.min(low, value);
      high = Math.max(high, value);
    }
    if (others < workerCount - 2) low = Math.min(low, 0);
    return high - low <= groups[i].largest * (1 + 1e-12) + tolerance;
  };
  for (;;) {
    let highest = 0;
    let lowest = 0;
    for (let w = 1; w < workerCount; w++) {
      if (totals[w] > totals[highest]) highest = w;
      if (totals[w] < totals[lowest]) lowest = w;
    }
    const gap = totals[highest] - totals[lowest];
    if (gap <= largestWeight + tolerance) return true;
    const t = pickMove(weight, tasksOn[highest], gap, (t) => keepsGroup(t, highest, lowest));
    if (t < 0) return false;
    const groupShares = shares[position[problem.group[t]]];
    groupShares.set(highest, groupShares.get(highest)! - weight[t]);
    groupShares.set(lowest, (groupShares.get(lowest) ?? 0) + weight[t]);
    const list = tasksOn[highest];
    list.splice(list.indexOf(t), 1);
    tasksOn[lowest].push(t);
    out.target[t] = lowest;
    totals[highest] -= weight[t];
    totals[lowest] += weight[t];
    out.load[highest] -= weight[t];
    out.load[lowest] += weight[t];
  }
}

/** Longest-processing-time bins, the heaviest bin to the worker with the lowest total. */
function freshLayout(
  problem: Problem,
  group: GroupTasks,
  share: Float64Array,
  totals: Float64Array,
  tie: Uint32Array,
  out: Placement,
): void {
  const workerCount = problem.workers.length;
  const weight = problem.weight;
  const binLoad = new Float64Array(workerCount);
  const binTasks: number[][] = Array.from({ length: workerCount }, () => []);
  const heap = new IndexHeap((a, b) => binLoad[a] < binLoad[b] || (binLoad[a] === binLoad[b] && a < b));
  for (let b = 0; b < workerCount; b++) heap.push(b);
  const tasks = [...group.tasks].sort((a, b) => weight[b] - weight[a]);
  for (const t of tasks) {
    const b = heap.pop();
    binTasks[b].push(t);
    binLoad[b] += weight[t];
    heap.push(b);
  }
  const bins = binTasks.map((_, b) => b).sort((a, b) => binLoad[b] - binLoad[a] || a - b);
  const workers = binTasks.map((_, w) => w).sort((a, b) => totals[a] - totals[b] || tie[a] - tie[b] || a - b);
  bins.forEach((b, i) => {
    const w = workers[i];
    for (const t of binTasks[b]) out.target[t] = w;
    share[w] = binLoad[b];
    out.load[w] += binLoad[b];
  });
}
