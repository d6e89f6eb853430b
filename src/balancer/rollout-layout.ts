import { matches } from "./labels.js";
import type { Problem } from "./model.js";
import type { BalancedShares } from "./rollout-shares.js";
import type { Task, UnassignedReason } from "./types.js";

const EPSILON = 1e-9;

/** The plan under construction, with the loads and antiKeys each placement adds. */
export class Layout {
  readonly target: Int32Array;
  readonly load: Float64Array;
  /** Per worker and group: `groupLoad[w * groupCount + g]`. */
  readonly groupLoad: Float64Array;
  readonly antiKeys: Array<Set<string>>;
  readonly reasons = new Map<number, UnassignedReason>();
  /** Task numbers of each key, by priority. */
  readonly members: number[][];
  readonly keySize: Float64Array;
  /** Set before the orphans are placed: the receivers' shares follow every placement. */
  shares?: BalancedShares;

  constructor(
    readonly problem: Problem,
    readonly tasks: readonly Task[],
  ) {
    const workers = problem.workers.length;
    this.target = new Int32Array(problem.ids.length).fill(-1);
    this.load = new Float64Array(workers);
    this.groupLoad = new Float64Array(workers * problem.groupCount);
    this.antiKeys = problem.workers.map(() => new Set<string>());
    this.members = Array.from({ length: problem.keyCount }, () => []);
    this.keySize = new Float64Array(problem.keyCount);
    for (const t of problem.order) {
      const k = problem.key[t];
      if (k < 0) continue;
      this.members[k].push(t);
      this.keySize[k] += problem.weight[t];
    }
  }

  /** The task numbers that go together with `t`: its key's, or itself. */
  unit(t: number): number[] {
    const k = this.problem.key[t];
    return k < 0 ? [t] : this.members[k];
  }

  size(unit: readonly number[]): number {
    const k = this.problem.key[unit[0]];
    return k < 0 ? this.problem.weight[unit[0]] : this.keySize[k];
  }

  /** Selector and spread label hold on `w` for every task of `unit`, and none of them failed there. */
  eligible(unit: readonly number[], w: number): boolean {
    const labels = this.problem.labels[w];
    return unit.every((t) => {
      const task = this.tasks[t];
      if (this.problem.avoid?.get(t)?.includes(w)) return false;
      if (task.selector !== undefined && !matches(task.selector, labels)) return false;
      return task.spread === undefined || (labels !== undefined && Object.hasOwn(labels, task.spread.label));
    });
  }

  /** No task of `unit` shares an antiKey with one already on `w`. */
  antiFree(unit: readonly number[], w: number): boolean {
    return unit.every((t) => {
      const anti = this.tasks[t].antiKey;
      return anti === undefined || !this.antiKeys[w].has(anti);
    });
  }

  fits(w: number, size: number): boolean {
    return this.load[w] + size <= this.problem.capacity[w] + EPSILON;
  }

  place(unit: readonly number[], w: number): void {
    for (const t of unit) {
      this.target[t] = w;
      this.addLoad(t, w, 1);
      const anti = this.tasks[t].antiKey;
      if (anti !== undefined) this.antiKeys[w].add(anti);
    }
  }

  unplace(unit: readonly number[], w: number): void {
    for (const t of unit) {
      this.target[t] = -1;
      this.addLoad(t, w, -1);
      const anti = this.tasks[t].antiKey;
      if (anti !== undefined) this.antiKeys[w].delete(anti);
    }
  }

  private addLoad(t: number, w: number, sign: 1 | -1): void {
    const { problem } = this;
    const cell = w * problem.groupCount + problem.group[t];
    const [groupBefore, totalBefore] = [this.groupLoad[cell], this.load[w]];
    this.load[w] += sign * problem.weight[t];
    this.groupLoad[cell] += sign * problem.weight[t];
    this.shares?.changed(w, problem.group[t], groupBefore, totalBefore);
  }
}
