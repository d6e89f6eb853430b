import type { Problem } from "./model.js";

const EPSILON = 1e-9;

/** A receiving worker's balanced share of one quantity (one group's load, or the total load). */
interface Share {
  /** Any worker may carry this much. */
  floor: number;
  /** How many workers may carry one more unit than `floor` (0 where weights make shares loose). */
  slots: number;
  /** Workers above `floor` now. */
  used: number;
}

/**
 * The balanced shares of the workers that receive tasks during a rollout, kept up to date as tasks are
 * placed: with unit weights, each worker carries the floor of the average and only as many workers as
 * the remainder carry one more (so the end is balanced as the plain planner balances); with weights or
 * keys, the ceiling of the average plus the largest unit less one.
 */
export class BalancedShares {
  private readonly groups: Share[];
  private readonly total: Share;
  private readonly receiving: Uint8Array;

  /** `amount`: per task, whether it counts (tasks kept by cordoned workers do not). */
  constructor(
    private readonly problem: Problem,
    private readonly load: Float64Array,
    private readonly groupLoad: Float64Array,
    receivers: readonly number[],
    counts: (t: number) => boolean,
    unitSize: (t: number) => number,
  ) {
    const n = Math.max(1, receivers.length);
    this.receiving = new Uint8Array(problem.workers.length);
    for (const w of receivers) this.receiving[w] = 1;
    const sums = new Float64Array(problem.groupCount);
    const largest = new Float64Array(problem.groupCount);
    let sum = 0;
    let largestUnit = 0;
    for (let t = 0; t < problem.ids.length; t++) {
      if (!counts(t)) continue;
      const g = problem.group[t];
      sums[g] += problem.weight[t];
      largest[g] = Math.max(largest[g], problem.weight[t]);
      sum += problem.weight[t];
      largestUnit = Math.max(largestUnit, unitSize(t));
    }
    const share = (amount: number, unit: number): Share =>
      unit <= 1
        ? {
            floor: Math.floor(amount / n + EPSILON),
            slots: amount - Math.floor(amount / n + EPSILON) * n,
            used: 0,
          }
        : { floor: Math.ceil(amount / n - EPSILON) + unit - 1, slots: 0, used: 0 };
    this.groups = Array.from(sums, (amount, g) => share(amount, largest[g]));
    this.total = share(sum, largestUnit);
    for (const w of receivers) {
      if (this.load[w] > this.total.floor + EPSILON) this.total.used++;
      this.groups.forEach((s, g) => {
        if (this.groupLoad[w * problem.groupCount + g] > s.floor + EPSILON) s.used++;
      });
    }
  }

  /** Whether `w` may take `size` more of `group` (-1: a key's tasks, the total only) within its shares. */
  room(w: number, group: number, size: number): boolean {
    if (!fits(this.total, this.load[w], size)) return false;
    return group < 0 || fits(this.groups[group], this.groupLoad[w * this.problem.groupCount + group], size);
  }

  /** Whether `w`'s share of `group` alone (not its total) takes `size` more. */
  groupRoom(w: number, group: number, size: number): boolean {
    return fits(this.groups[group], this.groupLoad[w * this.problem.groupCount + group], size);
  }

  /** Records that `w`'s load of `group` went from `groupBefore` and its total from `totalBefore` to now. */
  changed(w: number, group: number, groupBefore: number, totalBefore: number): void {
    if (!this.receiving[w]) return;
    count(this.total, totalBefore, this.load[w]);
    count(this.groups[group], groupBefore, this.groupLoad[w * this.problem.groupCount + group]);
  }
}

function fits(share: Share, load: number, size: number): boolean {
  if (load + size <= share.floor + EPSILON) return true;
  return (
    load + size <= share.floor + 1 + EPSILON && load <= share.floor + EPSILON && share.used < share.slots
  );
}

function count(share: Share, before: number, after: number): void {
  share.used += Number(after > share.floor + EPSILON) - Number(before > share.floor + EPSILON);
}
