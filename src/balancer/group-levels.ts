/**
 * How many of each group's free (unconstrained, unkeyed, unit-weight) tasks every worker gets when the
 * group's constrained tasks already sit on some workers: water-filling. A group's level q is the
 * largest with Σ_w max(0, q − base_w) ≤ free tasks; a worker below it is filled up to it ("its floor",
 * q − base), a worker at or above it gets none; the remainder goes one each to as many workers at or
 * below q ("ceilings", ceilings.ts). So a worker holding a free task of the group ends within one of
 * every other worker, constrained tasks counted where they are.
 * Totals over the groups follow the same rule: a worker's total T (bases and floors) is raised by its
 * ceilings towards a common level Λ (`lower` ceilings), and `extra` marks who may take one above it.
 * Without constrained tasks every base is 0: the floor is ⌊n / workers⌋ everywhere and Λ − T is the
 * same k for every worker, the unconstrained planner's shares exactly.
 */

/** A group's constrained tasks per worker number (only workers holding some). */
export type GroupBase = ReadonlyMap<number, number>;

export interface Levels {
  /** Per pool: its level. */
  level: number[];
  /** Per pool: tasks left after the floors; one each on that many distinct workers. */
  remainder: number[];
  /** Per pool: its base restricted to the active workers, or undefined when empty. */
  base: Array<GroupBase | undefined>;
  /** Per column (active worker): free tasks at the floors of every pool. */
  floors: Int32Array;
  /** Per column: ceilings it should take to reach the common total level. */
  lower: Int32Array;
  /** Per column: whether it may take one ceiling above `lower` (m of them do). */
  extra: Uint8Array;
  m: number;
  /** Whether some pool has a base on an active worker (else every column is alike). */
  based: boolean;
}

/** Worker `w`'s floor in pool i. */
export function floorAt(levels: Levels, i: number, w: number): number {
  const b = levels.base[i]?.get(w);
  return b === undefined ? levels.level[i] : Math.max(0, levels.level[i] - b);
}

/** Whether worker `w` may take a ceiling of pool i (its base is not above the level). */
export function ceilingAllowed(levels: Levels, i: number, w: number): boolean {
  const b = levels.base[i]?.get(w);
  return b === undefined || b <= levels.level[i];
}

export function groupLevels(
  pools: readonly number[][],
  bases: ReadonlyArray<GroupBase | undefined> | undefined,
  active: readonly number[],
): Levels {
  const columns = active.length;
  const columnOf = new Map<number, number>();
  active.forEach((w, c) => columnOf.set(w, c));
  const level: number[] = [];
  const remainder: number[] = [];
  const base: Array<GroupBase | undefined> = [];
  let based = false;
  pools.forEach((tasks, i) => {
    const n = tasks.length;
    let own: Map<number, number> | undefined;
    for (const [w, b] of bases?.[i] ?? []) if (b > 0 && columnOf.has(w)) (own ??= new Map()).set(w, b);
    base.push(own);
    if (!own) {
      level.push(Math.floor(n / columns));
      remainder.push(n - level[i] * columns);
      return;
    }
    based = true;
    const filled = (q: number) => {
      let sum = q * columns;
      for (const b of own.values()) sum -= Math.min(q, b);
      return sum;
    };
    let low = Math.floor(n / columns);
    let high = low;
    for (const b of own.values()) high += b;
    // The largest q with filled(q) ≤ n: filled(low) ≤ low × columns ≤ n.
    while (low < high) {
      const mid = Math.ceil((low + high) / 2);
      if (filled(mid) <= n) low = mid;
      else high = mid - 1;
    }
    level.push(low);
    remainder.push(n - filled(low));
  });
  const floorSum = level.reduce((sum, q) => sum + q, 0);
  const floors = new Int32Array(columns).fill(floorSum);
  const total = new Float64Array(columns).fill(floorSum);
  base.forEach((own, i) => {
    if (own) {
      for (const [w, b] of own) {
        const c = columnOf.get(w) as number;
        floors[c] -= Math.min(level[i], b);
        total[c] += Math.max(0, b - level[i]);
      }
    }
  });
  const ceilings = remainder.reduce((sum, r) => sum + r, 0);
  // The largest common level Λ with Σ max(0, Λ − T) ≤ the ceilings to give.
  const raise = (to: number) => total.reduce((sum, t) => sum + Math.max(0, to - t), 0);
  let low = Math.min(...total);
  let high = low + ceilings;
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    if (raise(mid) <= ceilings) low = mid;
    else high = mid - 1;
  }
  const lower = Int32Array.from(total, (t) => Math.max(0, low - t));
  const extra = Uint8Array.from(total, (t) => (t <= low ? 1 : 0));
  return { level, remainder, base, floors, lower, extra, m: ceilings - raise(low), based };
}
