import { hashString, pairHash } from "./hash.js";
import type { Problem } from "./model.js";
import type { Layout } from "./rollout-layout.js";
import type { BalancedShares } from "./rollout-shares.js";
import type { UnassignedReason } from "./types.js";

/**
 * Places what keepHeld left during a rollout, keys and constrained tasks first, highest priority first:
 * within the balanced share on the newest tier with room, then by capacity alone, newest tier first;
 * what fits nowhere gets its reason from `why`. Plain tasks (no key, no constraint, no worker to
 * avoid, no capacities in the fleet) are placed per group through a heap of each tier's workers, so a fleet's worth of them
 * costs O(n log W), not O(n W).
 */
export function placeOrphans(
  problem: Problem,
  layout: Layout,
  tiers: number[][],
  why: (unit: readonly number[]) => UnassignedReason,
): void {
  new OrphanPlacer(problem, layout, tiers, why).run();
}

class OrphanPlacer {
  private readonly shares: BalancedShares;
  private readonly workerHash: number[];
  /** Unkeyed tasks placed by this pass, per worker: their destination may still change at no cost. */
  private readonly placedNow: number[][];

  constructor(
    private readonly problem: Problem,
    private readonly layout: Layout,
    private readonly tiers: number[][],
    private readonly why: (unit: readonly number[]) => UnassignedReason,
  ) {
    this.shares = layout.shares as BalancedShares;
    this.workerHash = problem.workers.map((name) => hashString(name));
    this.placedNow = problem.workers.map((): number[] => []);
  }

  run(): void {
    const { problem, layout } = this;
    const plain = new Map<number, number[]>();
    const done = new Uint8Array(problem.keyCount);
    for (const t of problem.order) {
      if (layout.target[t] >= 0) continue;
      const k = problem.key[t];
      if (k < 0 && !problem.hasCapacity && !constrained(layout.tasks[t]) && !problem.avoid?.has(t)) {
        const list = plain.get(problem.group[t]);
        if (list) list.push(t);
        else plain.set(problem.group[t], [t]);
        continue;
      }
      if (k >= 0 && done[k]) continue;
      if (k >= 0) done[k] = 1;
      this.placeUnit(t);
    }
    for (const [group, list] of plain) this.placeGroup(group, list);
  }

  private within(w: number, group: number, size: number): boolean {
    return this.shares.room(w, group, size);
  }

  private takes(unit: readonly number[], w: number, size: number): boolean {
    const { layout } = this;
    return layout.fits(w, size) && layout.eligible(unit, w) && layout.antiFree(unit, w);
  }

  /** (group load, total load, tie hash) of `w`, compared in that order. */
  private better(w: number, than: number, group: number, tie: number): boolean {
    if (than < 0) return true;
    const { groupLoad, load } = this.layout;
    const cells = this.problem.groupCount;
    const [a, b] = group < 0 ? [0, 0] : [groupLoad[w * cells + group], groupLoad[than * cells + group]];
    if (a !== b) return a < b;
    if (load[w] !== load[than]) return load[w] < load[than];
    return pairHash(tie, this.workerHash[w]) < pairHash(tie, this.workerHash[than]);
  }

  private place(unit: readonly number[], w: number): void {
    this.layout.place(unit, w);
    if (unit.length === 1 && this.problem.key[unit[0]] < 0) this.placedNow[w].push(unit[0]);
  }

  /** One key's remaining tasks, or one task: the best worker of the newest tier that has room. */
  private placeUnit(t: number): void {
    const { problem, layout } = this;
    const k = problem.key[t];
    const unit = layout.unit(t).filter((u) => layout.target[u] < 0);
    const size = unit.reduce((sum, u) => sum + problem.weight[u], 0);
    const group = k < 0 ? problem.group[t] : -1;
    const tie = hashString(problem.ids[t]);
    const choose = (tier: readonly number[], balanced: boolean) => {
      let best = -1;
      for (const w of tier) {
        if (!this.takes(unit, w, size) || (balanced && !this.within(w, group, size))) continue;
        if (this.better(w, best, group, tie)) best = w;
      }
      return best;
    };
    let best = -1;
    for (const tier of this.tiers) {
      best = choose(tier, true);
      if (best < 0 && group >= 0) best = this.makeRoom(unit, group, size, tier);
      if (best >= 0) break;
    }
    for (const tier of best < 0 ? this.tiers : []) {
      best = choose(tier, false);
      if (best >= 0) break;
    }
    if (best >= 0) this.place(unit, best);
    else for (const u of unit) layout.reasons.set(u, this.why(unit));
  }

  /** One group's plain tasks: each to the tier's worker with the least of the group (a heap per tier). */
  private placeGroup(group: number, tasks: readonly number[]): void {
    const { problem } = this;
    const tie = hashString(`group ${group}`);
    const lower = (a: number, b: number) => this.better(a, b, group, tie);
    let next = 0;
    for (const tier of this.tiers) {
      const heap = new WorkerHeap(lower, tier);
      while (next < tasks.length) {
        const t = tasks[next];
        const w = heap.size > 0 ? heap.pop() : this.makeRoom([t], group, problem.weight[t], tier);
        if (w < 0) break;
        if (!this.within(w, group, problem.weight[t])) continue;
        this.place([t], w);
        heap.push(w);
        next++;
      }
    }
    // No balanced share left anywhere: the newest tier's least loaded (no capacities in this pass).
    const heap = new WorkerHeap(lower, this.tiers[0] ?? []);
    for (; next < tasks.length; next++) {
      if (heap.size === 0) {
        this.layout.reasons.set(tasks[next], this.why([tasks[next]]));
        continue;
      }
      const w = heap.pop();
      this.place([tasks[next]], w);
      heap.push(w);
    }
  }

  /** A worker of `tier` that takes `unit` once a task this pass placed there goes to another worker of the tier. */
  private makeRoom(unit: readonly number[], group: number, size: number, tier: readonly number[]): number {
    const { problem, layout, placedNow } = this;
    for (const w of tier) {
      // Only a full total share can be freed by sending one of its tasks of another group elsewhere.
      if (!this.shares.groupRoom(w, group, size) || !this.takes(unit, w, size)) continue;
      for (const x of placedNow[w]) {
        const [groupX, sizeX] = [problem.group[x], problem.weight[x]];
        layout.unplace([x], w);
        const v = tier.find((u) => u !== w && this.takes([x], u, sizeX) && this.within(u, groupX, sizeX));
        if (v !== undefined) layout.place([x], v);
        if (v !== undefined && this.within(w, group, size)) {
          placedNow[w].splice(placedNow[w].indexOf(x), 1);
          placedNow[v].push(x);
          return w;
        }
        if (v !== undefined) layout.unplace([x], v);
        layout.place([x], w);
      }
    }
    return -1;
  }
}

function constrained(task: { selector?: unknown; spread?: unknown; antiKey?: unknown }): boolean {
  return task.selector !== undefined || task.spread !== undefined || task.antiKey !== undefined;
}

/** A binary min-heap of worker numbers under `lower`, read when they are pushed. */
class WorkerHeap {
  private readonly items: number[] = [];

  constructor(
    private readonly lower: (a: number, b: number) => boolean,
    workers: readonly number[],
  ) {
    for (const w of workers) this.push(w);
  }

  get size(): number {
    return this.items.length;
  }

  push(w: number): void {
    const { items, lower } = this;
    let i = items.push(w) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!lower(w, items[parent])) break;
      items[i] = items[parent];
      i = parent;
    }
    items[i] = w;
  }

  pop(): number {
    const { items, lower } = this;
    const top = items[0];
    const last = items.pop() as number;
    if (items.length === 0) return top;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= items.length) break;
      const right = left + 1;
      const child = right < items.length && lower(items[right], items[left]) ? right : left;
      if (!lower(items[child], last)) break;
      items[i] = items[child];
      i = child;
    }
    items[i] = last;
    return top;
  }
}
