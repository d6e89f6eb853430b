import type { Constraints } from "./constraints.js";
import { hashString, pairHash } from "../../../../src/balancer/hash.js";
import { KeyedHeap } from "../../../../src/balancer/heap.js";
import type { Placement, Problem } from "../../../../src/balancer/model.js";
import { antiReason, capacityReason, type Unit, unitsOf } from "./units.js";
import { spreadTargets } from "../../../../src/balancer/spread-targets.js";
import type { UnassignedReason } from "../../../../src/balancer/types.js";

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
): void {
  const W = problem.workers.length;
  const { units, keyLoad } = unitsOf(problem, cons, admitted, reasons);
  if (pinned) for (const u of units) if (pinned[u.tasks[0]] >= 0) u.home = pinned[u.tasks[0]];
  const { capacity } = problem;
  const load = out.load;
  const fits = (u: Unit, w: number) => load[w] + u.size <= capacity[w] * (1 + 1e-12) + 1e-12;
  const antiWorker = new Set<number>();
  const antiValue = new Set<string>();
  const valueTag = (u: Unit, w: number) => {
    const set = u.set >= 0 ? cons.sets[u.set] : undefined;
    if (!set?.label) return undefined;
    return `${set.label}\u0000${(problem.labels[w] as Record<string, string>)[set.label]}`;
  };
  const antiFree = (u: Unit, w: number) => {
    if (u.anti.length === 0) return true;
    const tag = valueTag(u, w);
    return u.anti.every(
      (a) => !antiWorker.has(a * W + w) && (tag === undefined || !antiValue.has(`${a}\u0000${tag}`)),
    );
  };
  // Per set: kept count per value and kept weight per worker.
  const setValueCount = cons.sets.map((set) => new Int32Array(set.values.length));
  const setWorkerWeight = new Map<number, number>();
  const swKey = (s: number, w: number) => s * W + w;
  const onWorker: number[][] = Array.from({ length: W }, () => []);
  const place = (ui: number, w: number) => {
    const u = units[ui];
    u.at = w;
    load[w] += u.size;
    for (const t of u.tasks) out.target[t] = w;
    const tag = u.anti.length > 0 ? valueTag(u, w) : undefined;
    for (const a of u.anti) {
      antiWorker.add(a * W + w);
      if (tag !== undefined) antiValue.add(`${a}\u0000${tag}`);
    }
    if (u.set >= 0) {
      setValueCount[u.set][cons.sets[u.set].valueOfWorker[w]]++;
      setWorkerWeight.set(swKey(u.set, w), (setWorkerWeight.get(swKey(u.set, w)) ?? 0) + u.size);
      onWorker[w].push(ui);
    } else keyLoad[w] += u.size;
  };
  const unplace = (ui: number) => {
    const u = units[ui];
    const w = u.at;
    u.at = -1;
    load[w] -= u.size;
    for (const t of u.tasks) out.target[t] = -1;
    const tag = valueTag(u, w);
    for (const a of u.anti) {
      antiWorker.delete(a * W + w);
      if (tag !== undefined) antiValue.delete(`${a}\u0000${tag}`);
    }
    if (u.set >= 0) {
      setValueCount[u.set][cons.sets[u.set].valueOfWorker[w]]--;
      setWorkerWeight.set(swKey(u.set, w), (setWorkerWeight.get(swKey(u.set, w)) as number) - u.size);
      const list = onWorker[w];
      list.splice(list.indexOf(ui), 1);
    } else keyLoad[w] -= u.size;
  };

  // 1. Targets.
  const live = units.map((u, i) => i).filter((i) => reasons[units[i].tasks[0]] === undefined);
  const setTotal = cons.sets.map(() => 0);
  const setWeight = cons.sets.map(() => 0);
  const held = cons.sets.map((set) => new Array<number>(set.values.length).fill(0));
  for (const i of live) {
    const u = units[i];
    if (u.set < 0) continue;
    setTotal[u.set]++;
    setWeight[u.set] += u.size;
    const v = u.home >= 0 ? cons.sets[u.set].valueOfWorker[u.home] : -1;
    if (v >= 0) held[u.set][v]++;
  }
  const targets = cons.sets.map((set, s) =>
    set.label === undefined ? [setTotal[s]] : spreadTargets(held[s], setTotal[s], set.maxSkew),
  );
  const shareOf = (s: number, v: number) =>
    ((setWeight[s] / Math.max(1, setTotal[s])) * targets[s][v]) / cons.sets[s].valueWorkers[v].length;

  // 2. Keep.
  const pending: number[] = [];
  if (pinned) for (const i of live) if (pinned[units[i].tasks[0]] >= 0) place(i, units[i].home);
  for (const i of live) {
    const u = units[i];
    if (u.at >= 0) continue;
    const h = u.home;
    let keep = h >= 0 && u.eligible[h] === 1 && fits(u, h) && antiFree(u, h);
    if (keep && u.set >= 0) {
      const v = cons.sets[u.set].valueOfWorker[h];
      keep =
        setValueCount[u.set][v] < targets[u.set][v] &&
        (setWorkerWeight.get(swKey(u.set, h)) ?? 0) < shareOf(u.set, v) - 1e-9;
    }
    if (keep) place(i, h);
    else pending.push(i);
  }

  // 3. Place, highest priority first; evicted units rejoin the queue at their rank.
  const workerHash = problem.workers.map(hashString);
  // Within a set: least set weight first, ties by a hash of (set, worker) so that sets start apart.
  const heaps = new Map<number, KeyedHeap>();
  const cellKey = (s: number, w: number) =>
    (setWorkerWeight.get(swKey(s, w)) ?? 0) * 2 ** 32 + pairHash(s + 0x51ed27, workerHash[w]);
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
  let chosenFor = units[0];
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
  const choose = (u: Unit, allowValue?: (v: number) => boolean): number => {
    chosenFor = u;
    blockedByAnti = false;
    blockedByRoom = false;
    if (u.set < 0) return pickForKey(u, problem.keyNames, workerHash, keyLoad, accepts);
    cellSet = u.set;
    const count = setValueCount[u.set];
    const target = targets[u.set];
    const n = cons.sets[u.set].values.length;
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
      const found = pickInCell(cellHeap(u.set, v), keyInCell, accepts);
      if (found >= 0) return found;
    }
    return -1;
  };

  const order = (a: number, b: number) => units[a].rank - units[b].rank;
  pending.sort(order);
  const queue = pending;
  for (let q = 0; q < queue.length; q++) {
    const ui = queue[q];
    const u = units[ui];
    let w = choose(u);
    const onlyAnti = blockedByAnti && !blockedByRoom;
    if (w < 0 && u.set >= 0) {
      const evicted = evictFor(u, units, onWorker, load, capacity, antiFree);
      if (evicted) {
        for (const e of evicted.units) {
          unplace(e);
          // Keep the queue in rank order for the rest of the pass.
          let at = q + 1;
          while (at < queue.length && order(queue[at], e) < 0) at++;
          queue.splice(at, 0, e);
        }
        w = evicted.worker;
      }
    }
    if (w >= 0) {
      place(ui, w);
      if (u.set >= 0) cellHeap(u.set, cons.sets[u.set].valueOfWorker[w]).push(cellKey(u.set, w), w);
      continue;
    }
    const reason = onlyAnti ? antiReason(u, cons, units) : capacityReason(u, cons);
    for (const t of u.tasks) reasons[t] = reason;
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
        for (const ui of onWorker[w])
          if (units[ui].set === s && (victim < 0 || units[ui].rank > units[victim].rank)) victim = ui;
      unplace(victim);
      const text = `spread ${set.label} (maxSkew ${set.maxSkew}, hard): ${set.label}=${set.values[bottom]} holds only ${count[bottom]}`;
      for (const t of units[victim].tasks) reasons[t] = { kind: "spread", text };
      trimmed = true;
    }
  });
  // Room the trim freed goes to the units that found none, a hard spread's only where it stays within maxSkew.
  if (!trimmed) return;
  for (const ui of queue) {
    const u = units[ui];
    if (u.at >= 0 || reasons[u.tasks[0]]?.kind !== "capacity") continue;
    const set = u.set >= 0 ? cons.sets[u.set] : undefined;
    const count = u.set >= 0 ? setValueCount[u.set] : undefined;
    const allow =
      set?.hard && count
        ? (v: number) => count[v] + 1 - Math.min(...count.map((c, i) => (i === v ? c + 1 : c))) <= set.maxSkew
        : undefined;
    const worker = choose(u, allow);
    if (worker < 0) continue;
    for (const t of u.tasks) reasons[t] = undefined;
    place(ui, worker);
    if (u.set >= 0)
      cellHeap(u.set, cons.sets[u.set].valueOfWorker[worker]).push(cellKey(u.set, worker), worker);
  }
}

/** The least-keyed cell worker that `ok` accepts; those refused go back after (lazy keys re-pushed). */
function pickInCell(heap: KeyedHeap, keyOf: (w: number) => number, ok: (w: number) => boolean): number {
  let refused: number[] | undefined;
  let found = -1;
  while (heap.size > 0) {
    const key = heap.topKey();
    const w = heap.pop();
    const now = keyOf(w);
    if (now !== key) {
      heap.push(now, w);
      continue;
    }
    if (ok(w)) {
      found = w;
      break;
    }
    (refused ??= []).push(w);
  }
  if (refused) for (const w of refused) heap.push(keyOf(w), w);
  return found;
}

/** The key's highest-scoring accepted worker within 1.25 × the average keyed load, else the least loaded. */
function pickForKey(
  u: Unit,
  keyNames: string[],
  workerHash: number[],
  keyLoad: Float64Array,
  ok: (w: number) => boolean,
): number {
  const keyHash = hashString(keyNames[u.key]);
  let total = u.size;
  for (const w of u.workers) total += keyLoad[w];
  const bound = (1.25 * total) / u.workers.length;
  let best = -1;
  let bestScore = -1;
  let lightest = -1;
  for (const w of u.workers) {
    if (!ok(w)) continue;
    if (lightest < 0 || keyLoad[w] < keyLoad[lightest]) lightest = w;
    if (keyLoad[w] > 0 && keyLoad[w] + u.size > bound) continue;
    const score = pairHash(keyHash, workerHash[w]);
    if (score > bestScore) {
      best = w;
      bestScore = score;
    }
  }
  return best >= 0 ? best : lightest;
}

/**
 * An eligible worker where evicting lower-priority constrained tasks (lowest first) makes room for `u`,
 * the one needing the least evicted weight; undefined when none.
 */
function evictFor(
  u: Unit,
  units: Unit[],
  onWorker: number[][],
  load: Float64Array,
  capacity: Float64Array,
  antiFree: (u: Unit, w: number) => boolean,
): { worker: number; units: number[] } | undefined {
  let best: { worker: number; units: number[]; weight: number } | undefined;
  for (const w of u.workers) {
    if (!antiFree(u, w)) continue;
    const lower = onWorker[w]
      .filter((e) => units[e].priority < u.priority)
      .sort((a, b) => units[b].rank - units[a].rank);
    let room = capacity[w] - load[w];
    const chosen: number[] = [];
    let weight = 0;
    for (const e of lower) {
      if (room >= u.size - 1e-9) break;
      chosen.push(e);
      room += units[e].size;
      weight += units[e].size;
    }
    if (room < u.size - 1e-9 || chosen.length === 0) continue;
    if (!best || weight < best.weight) best = { worker: w, units: chosen, weight };
  }
  return best;
}
