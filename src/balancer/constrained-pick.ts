import { hashString, pairHash } from "./hash.js";
import type { KeyedHeap } from "./heap.js";
import type { Units } from "./units.js";

/** The least-keyed cell worker that `ok` accepts; those refused go back after (lazy keys re-pushed). */
export function pickInCell(
  heap: KeyedHeap,
  keyOf: (w: number) => number,
  ok: (w: number) => boolean,
): number {
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
export function pickForKey(
  units: Units,
  u: number,
  keyNames: string[],
  workerHash: number[],
  keyLoad: Float64Array,
  ok: (w: number) => boolean,
): number {
  const keyHash = hashString(keyNames[units.key[u]]);
  const { workers } = units.eligs[units.elig[u]];
  const size = units.size[u];
  let total = size;
  for (const w of workers) total += keyLoad[w];
  const bound = (1.25 * total) / workers.length;
  let best = -1;
  let bestScore = -1;
  let lightest = -1;
  for (const w of workers) {
    if (!ok(w)) continue;
    if (lightest < 0 || keyLoad[w] < keyLoad[lightest]) lightest = w;
    if (keyLoad[w] > 0 && keyLoad[w] + size > bound) continue;
    const score = pairHash(keyHash, workerHash[w]);
    if (score > bestScore) {
      best = w;
      bestScore = score;
    }
  }
  return best >= 0 ? best : lightest;
}

/**
 * The set units placed per worker, as linked lists over unit numbers (no array per worker to grow
 * or splice); the order within a list carries no meaning (readers order by rank).
 */
export class WorkerLists {
  readonly head: Int32Array;
  readonly next: Int32Array;
  private readonly prev: Int32Array;

  constructor(workerCount: number, unitCount: number) {
    this.head = new Int32Array(workerCount).fill(-1);
    this.next = new Int32Array(unitCount).fill(-1);
    this.prev = new Int32Array(unitCount).fill(-1);
  }

  add(w: number, u: number): void {
    const h = this.head[w];
    this.next[u] = h;
    this.prev[u] = -1;
    if (h >= 0) this.prev[h] = u;
    this.head[w] = u;
  }

  remove(w: number, u: number): void {
    const { next, prev } = this;
    if (prev[u] >= 0) next[prev[u]] = next[u];
    else this.head[w] = next[u];
    if (next[u] >= 0) prev[next[u]] = prev[u];
    next[u] = prev[u] = -1;
  }

  /** The units on worker `w`. */
  on(w: number): number[] {
    const out: number[] = [];
    for (let u = this.head[w]; u >= 0; u = this.next[u]) out.push(u);
    return out;
  }
}

/**
 * An eligible worker where evicting lower-priority constrained tasks (lowest first) makes room for `u`,
 * the one needing the least evicted weight; undefined when none.
 */
export function evictFor(
  units: Units,
  u: number,
  onWorker: WorkerLists,
  load: Float64Array,
  capacity: Float64Array,
  antiFree: (u: number, w: number) => boolean,
): { worker: number; units: number[] } | undefined {
  let best: { worker: number; units: number[]; weight: number } | undefined;
  const size = units.size[u];
  for (const w of units.eligs[units.elig[u]].workers) {
    if (!antiFree(u, w)) continue;
    const lower = onWorker
      .on(w)
      .filter((e) => units.priority[e] < units.priority[u])
      .sort((a, b) => units.rank[b] - units.rank[a]);
    let room = capacity[w] - load[w];
    const chosen: number[] = [];
    let weight = 0;
    for (const e of lower) {
      if (room >= size - 1e-9) break;
      chosen.push(e);
      room += units.size[e];
      weight += units.size[e];
    }
    if (room < size - 1e-9 || chosen.length === 0) continue;
    if (!best || weight < best.weight) best = { worker: w, units: chosen, weight };
  }
  return best;
}
