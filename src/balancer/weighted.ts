import { hashString, pairHash } from "./hash.js";
import { IndexHeap, KeyedHeap } from "./heap.js";
import type { GroupTasks, Placement, Problem } from "./model.js";

/**
 * Least-load placement of the weighted groups (a task weighs other than 1), after the keyed tasks and
 * the unit-weight groups, one group at a time. Every task stays where it runs, new and orphaned ones go
 * heaviest first to the lowest-total worker among those light enough in the group, then single tasks
 * move from the fullest worker until the group's shares are within its largest weight. Once all
 * groups are placed, single tasks move from the highest-total worker to the lowest (never unbalancing
 * their group) until totals are within the largest weight. Should that get stuck, the weighted groups
 * are laid out afresh, each longest first into bins and the heaviest bin to the worker with the lowest
 * total, which provably keeps every spread within the largest weight.
 */
export function placeWeightedGroups(
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
