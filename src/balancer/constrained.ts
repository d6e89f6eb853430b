import type { Constraints } from "./constraints.js";
import { evictFor, pickForKey, pickInCell, WorkerLists } from "./constrained-pick.js";
import { hashString, pairHash } from "./hash.js";
import { KeyedHeap } from "./heap.js";
import type { Placement, Problem } from "./model.js";
import { antiOf, antiReason, capacityReason, unitsOf } from "./units.js";
import { spreadTargets } from "./spread-targets.js";
import type { UnassignedReason } from "./types.js";

/**
 * Places the constrained tasks (a selector, a spread or an antiKey, and the keys holding one) before
 * the rest, one unit (a task, or a key's tasks together) at a time:
 * 1. targets: per set (group × eligibility × spread) how many tasks each label value gets
 *    (spread-targets.ts: within maxSkew, fewest leaving a value), and per worker its even share;
 * 2. keep: in priority order, a unit stays on the worker that runs it while that worker is eligible,
 *    has room, no task of its antiKey (or, with a spread, none on its value), and its value and
 *    worker are within their targets;
 * 3. place: in priority order, the rest go to the value furthest below its target, then to the
 *    least-loaded eligible worker of it; a key goes to its highest-scoring eligible worker within
 *    1.25 × the average (else the least loaded). A unit that finds no room evicts lower-priority tasks
 *    from an eligible worker (they are placed again after it); what fits nowhere gets its reason;
 * 4. a hard spread leaves its excess (lowest priority first) unassigned until within maxSkew.
 * With `pinned` (a task → worker from an earlier pass), those tasks stay put and the others are added.
 */
export function placeConstrained(
  problem: Problem,
  cons: Constraints,
  admitted: Uint8Array,
  out: Placement,
  reasons: Array<UnassignedReason | undefined>,
  pinned?: Int32Array,
): boolean {
  const W = problem.workers.length;
  const { units, keyLoad } = unitsOf(problem, cons, admitted, reasons);
  const { first, list, size, set: unitSet, at, home, eligs, elig } = units;
  if (pinned)
    for (let u = 0; u < units.count; u++) if (pinned[list[first[u]]] >= 0) home[u] = pinned[list[first[u]]];
  const { capacity } = problem;
  const load = out.load;
  const fits = (u: number, w: number) => load[w] + size[u] <= capacity[w] * (1 + 1e-12) + 1e-12;
  const antiWorker = new Set<number>();
  const antiValue = new Set<string>();
  const valueTag = (u: number, w: number) => {
    const set = unitSet[u] >= 0 ? cons.sets[unitSet[u]] : undefined;
    if (!set?.label) return undefined;
    return `${set.label}\u0000${(problem.labels[w] as Record<string, string>)[set.label]}`;
  };
  const antiFree = (u: number, w: number) => {
    const anti = antiOf(units, u);
    if (anti.length === 0) return true;
    const tag = valueTag(u, w);
    return anti.every(
      (a) => !antiWorker.has(a * W + w) && (tag === undefined || !antiValue.has(`${a}\u0000${tag}`)),
    );
  };
  // Per set: kept count per value and kept weight per worker (dense while sets × workers stay small).
  const setValueCount = cons.sets.map((set) => new Int32Array(set.values.length));
  const dense = cons.sets.length * W <= 1 << 22 ? new Float64Array(cons.sets.length * W) : undefined;
  const sparse = new Map<number, number>();
  const weightOn = dense
    ? (s: number, w: number) => dense[s * W + w]
    : (s: number, w: number) => sparse.get(s * W + w) ?? 0;
  const addWeight = (s: number, w: number, delta: number) => {
    if (dense) dense[s * W + w] += delta;
    else sparse.set(s * W + w, (sparse.get(s * W + w) ?? 0) + delta);
  };
  const onWorker = new WorkerLists(W, units.count);
  const place = (u: number, w: number) => {
    at[u] = w;
    load[w] += size[u];
    for (let i = first[u]; i < first[u + 1]; i++) out.target[list[i]] = w;
    const anti = antiOf(units, u);
    const tag = anti.length > 0 ? valueTag(u, w) : undefined;
    for (const a of anti) {
      antiWorker.add(a * W + w);
      if (tag !== undefined) antiValue.add(`${a}\u0000${tag}`);
    }
    const s = unitSet[u];
    if (s >= 0) {
      setValueCount[s][cons.sets[s].valueOfWorker[w]]++;
      addWeight(s, w, size[u]);
      onWorker.add(w, u);
    } else keyLoad[w] += size[u];
  };
  const unplace = (u: number) => {
    const w = at[u];
    at[u] = -1;
    load[w] -= size[u];
    for (let i = first[u]; i < first[u + 1]; i++) out.target[list[i]] = -1;
    const tag = valueTag(u, w);
    for (const a of antiOf(units, u)) {
      antiWorker.delete(a * W + w);
      if (tag !== undefined) antiValue.delete(`${a}\u0000${tag}`);
    }
    const s = unitSet[u];
    if (s >= 0) {
      setValueCount[s][cons.sets[s].valueOfWorker[w]]--;
      addWeight(s, w, -size[u]);
      onWorker.remove(w, u);
    } else keyLoad[w] -= size[u];
  };

  // 1. Targets.
  let liveCount = 0;
  const live = new Int32Array(units.count);
  for (let u = 0; u < units.count; u++) if (reasons[list[first[u]]] === undefined) live[liveCount++] = u;
  const setTotal = cons.sets.map(() => 0);
  const setWeight = cons.sets.map(() => 0);
  const held = cons.sets.map((set) => new Array<number>(set.values.length).fill(0));
  for (let i = 0; i < liveCount; i++) {
    const u = live[i];
    const s = unitSet[u];
    if (s < 0) continue;
    setTotal[s]++;
    setWeight[s] += size[u];
    const v = home[u] >= 0 ? cons.sets[s].valueOfWorker[home[u]] : -1;
    if (v >= 0) held[s][v]++;
  }
  const targets = cons.sets.map((set, s) =>
    set.label === undefined ? [setTotal[s]] : spreadTargets(held[s], setTotal[s], set.maxSkew),
  );
  const shareOf = (s: number, v: number) =>
    ((setWeight[s] / Math.max(1, setTotal[s])) * targets[s][v]) / cons.sets[s].valueWorkers[v].length;

  // 2. Keep.
  const pending: number[] = [];
  if (pinned)
    for (let i = 0; i < liveCount; i++) if (pinned[list[first[live[i]]]] >= 0) place(live[i], home[live[i]]);
  for (let i = 0; i < liveCount; i++) {
    const u = live[i];
    if (at[u] >= 0) continue;
    const h = home[u];
    let keep = h >= 0 && eligs[elig[u]].eligible[h] === 1 && fits(u, h) && antiFree(u, h);
    const s = unitSet[u];
    if (keep && s >= 0) {
      const v = cons.sets[s].valueOfWorker[h];
      keep = setValueCount[s][v] < targets[s][v] && weightOn(s, h) < shareOf(s, v) - 1e-9;
    }
    if (keep) place(u, h);
    else pending.push(u);
  }

  // 3. Place, highest priority first; evicted units rejoin the queue at their rank.
  const workerHash = problem.workers.map(hashString);
  // Within a set: least set weight first, ties by a hash of (set, worker) so that sets start apart.
  const heaps = new Map<number, KeyedHeap>();
  const cellKey = (s: number, w: number) => weightOn(s, w) * 2 ** 32 + pairHash(s + 0x51ed27, workerHash[w]);
  const cellHeap = (s: number, v: number) => {
    const id = s * 1_000_003 + v;
    let heap = heaps.get(id);
    if (!heap) {
      heap = new KeyedHeap();
      for (const w of cons.sets[s].valueWorkers[v]) heap.push(cellKey(s, w), w);
      heaps.set(id, heap);
    }
    return heap;
  };
  // choose() state, kept outside it so that placing a unit allocates nothing.
  let chosenFor = 0;
  let blockedByAnti = false;
  let blockedByRoom = false;
  let cellSet = -1;
  const accepts = (x: number) => {
    if (!antiFree(chosenFor, x)) blockedByAnti = true;
    else if (!fits(chosenFor, x)) blockedByRoom = true;
    else return true;
    return false;
  };
  const keyInCell = (x: number) => cellKey(cellSet, x);
  const valueOrder = new Int32Array(cons.sets.reduce((most, set) => Math.max(most, set.values.length), 1));
  /** The worker for `u`, or -1 (then `blockedByAnti && !blockedByRoom`: only antiKeys stood in the way). */
  const choose = (u: number, allowValue?: (v: number) => boolean): number => {
    chosenFor = u;
    blockedByAnti = false;
    blockedByRoom = false;
    const s = unitSet[u];
    if (s < 0) return pickForKey(units, u, problem.keyNames, workerHash, keyLoad, accepts);
    cellSet = s;
    const count = setValueCount[s];
    const target = targets[s];
    const n = cons.sets[s].values.length;
    // Values furthest below their target first, then the emptiest (an insertion sort: a few values).
    const before = (a: number, b: number) => {
      const da = target[a] - count[a];
      const db = target[b] - count[b];
      return ((db > 0 ? 1 : 0) - (da > 0 ? 1 : 0) || db - da || count[a] - count[b] || a - b) < 0;
    };
    for (let i = 0; i < n; i++) {
      let j = i;
      while (j > 0 && before(i, valueOrder[j - 1])) {
        valueOrder[j] = valueOrder[j - 1];
        j--;
      }
      valueOrder[j] = i;
    }
    for (let i = 0; i < n; i++) {
      const v = valueOrder[i];
      if (allowValue && !allowValue(v)) continue;
      const found = pickInCell(cellHeap(s, v), keyInCell, accepts);
      if (found >= 0) return found;
    }
    return -1;
  };

  /** Whether a unit that took part in placing was left out for a reason other than capacity. */
  let placedOut = false;
  const rank = units.rank;
  // Units are numbered in priority order, so `pending` is in rank order already.
  const queue = pending;
  const setReason = (u: number, reason: UnassignedReason | undefined) => {
    for (let i = first[u]; i < first[u + 1]; i++) reasons[list[i]] = reason;
  };
  for (let q = 0; q < queue.length; q++) {
    const u = queue[q];
    let w = choose(u);
    const onlyAnti = blockedByAnti && !blockedByRoom;
    if (w < 0 && unitSet[u] >= 0) {
      const evicted = evictFor(units, u, onWorker, load, capacity, antiFree);
      if (evicted) {
        for (const e of evicted.units) {
          unplace(e);
          // Keep the queue in rank order for the rest of the pass.
          let to = q + 1;
          while (to < queue.length && rank[queue[to]] < rank[e]) to++;
          queue.splice(to, 0, e);
        }
        w = evicted.worker;
      }
    }
    if (w >= 0) {
      place(u, w);
      if (unitSet[u] >= 0)
        cellHeap(unitSet[u], cons.sets[unitSet[u]].valueOfWorker[w]).push(cellKey(unitSet[u], w), w);
      continue;
    }
    setReason(u, onlyAnti ? antiReason(units, u, cons) : capacityReason(units, u, cons));
    if (onlyAnti) placedOut = true;
  }

  // 4. Hard spreads: the excess goes, lowest priority first.
  let trimmed = false;
  cons.sets.forEach((set, s) => {
    if (!set.hard || set.label === undefined || set.values.length === 0) return;
    const count = setValueCount[s];
    for (;;) {
      let top = 0;
      let bottom = 0;
      for (let v = 1; v < count.length; v++) {
        if (count[v] > count[top]) top = v;
        if (count[v] < count[bottom]) bottom = v;
      }
      if (count[top] - count[bottom] <= set.maxSkew) return;
      let victim = -1;
      for (const w of set.valueWorkers[top])
        for (let u = onWorker.head[w]; u >= 0; u = onWorker.next[u])
          if (unitSet[u] === s && (victim < 0 || rank[u] > rank[victim])) victim = u;
      unplace(victim);
      const text = `spread ${set.label} (maxSkew ${set.maxSkew}, hard): ${set.label}=${set.values[bottom]} holds only ${count[bottom]}`;
      setReason(victim, { kind: "spread", text });
      placedOut = true;
      trimmed = true;
    }
  });
  // Room the trim freed goes to the units that found none, a hard spread's only where it stays within maxSkew.
  if (!trimmed) return placedOut;
  for (const u of queue) {
    if (at[u] >= 0 || reasons[list[first[u]]]?.kind !== "capacity") continue;
    const s = unitSet[u];
    const set = s >= 0 ? cons.sets[s] : undefined;
    const count = s >= 0 ? setValueCount[s] : undefined;
    const allow =
      set?.hard && count
        ? (v: number) => count[v] + 1 - Math.min(...count.map((c, i) => (i === v ? c + 1 : c))) <= set.maxSkew
        : undefined;
    const worker = choose(u, allow);
    if (worker < 0) continue;
    setReason(u, undefined);
    place(u, worker);
    if (s >= 0) cellHeap(s, cons.sets[s].valueOfWorker[worker]).push(cellKey(s, worker), worker);
  }
  return placedOut;
}
