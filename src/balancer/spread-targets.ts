/**
 * How many of a spread's `total` tasks each value gets: counts within `maxSkew` of each other, and as
 * few tasks as possible leaving a value that holds them now (`held`, per value). Every band
 * [lo, lo + maxSkew] that can hold the total is tried (at most maxSkew + 1 of them): values keep what
 * they hold clamped into the band, then the sum is brought to the total, cutting the fullest values
 * first (each cut is one move) or adding to the emptiest (free: those are tasks to place anyway).
 * Ties go to the evener result, then the lower band. Pure; values are numbered, no names needed.
 */
export function spreadTargets(held: readonly number[], total: number, maxSkew: number): number[] {
  const m = held.length;
  if (m === 0) return [];
  const skew = Math.min(maxSkew, Math.max(1, total));
  const lowest = Math.max(0, Math.ceil((total - skew * m) / m));
  const highest = Math.floor(total / m);
  let best: number[] | undefined;
  let bestCost = Number.POSITIVE_INFINITY;
  let bestSpan = Number.POSITIVE_INFINITY;
  for (let lo = lowest; lo <= highest; lo++) {
    const x = fit(held, total, lo, lo + skew);
    let cost = 0;
    let min = Number.POSITIVE_INFINITY;
    let max = 0;
    for (let v = 0; v < m; v++) {
      cost += Math.max(0, held[v] - x[v]);
      min = Math.min(min, x[v]);
      max = Math.max(max, x[v]);
    }
    if (cost < bestCost || (cost === bestCost && max - min < bestSpan)) {
      best = x;
      bestCost = cost;
      bestSpan = max - min;
    }
  }
  return best as number[];
}

function fit(held: readonly number[], total: number, lo: number, hi: number): number[] {
  const x = held.map((count) => Math.min(hi, Math.max(lo, count)));
  let sum = x.reduce((a, b) => a + b, 0);
  if (sum === total) return x;
  // Levels: cut from the top (or fill from the bottom) one unit at a time, ties to the lower value number.
  const order = x.map((_, v) => v);
  if (sum > total) {
    order.sort((a, b) => x[b] - x[a] || a - b);
    while (sum > total) {
      const top = x[order[0]];
      for (const v of order) {
        if (sum === total || x[v] < top || x[v] <= lo) break;
        x[v]--;
        sum--;
      }
      order.sort((a, b) => x[b] - x[a] || a - b);
      if (x[order[0]] <= lo) break;
    }
  } else {
    order.sort((a, b) => x[a] - x[b] || a - b);
    while (sum < total) {
      const bottom = x[order[0]];
      for (const v of order) {
        if (sum === total || x[v] > bottom || x[v] >= hi) break;
        x[v]++;
        sum++;
      }
      order.sort((a, b) => x[a] - x[b] || a - b);
      if (x[order[0]] >= hi) break;
    }
  }
  return x;
}
