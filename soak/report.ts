import type { SoakResult } from "./run.js";

/** The one summary line. */
export function summary(result: SoakResult): string {
  const faults = [...result.faults].map(([kind, count]) => `${kind} ${count}`).join(", ");
  const total = [...result.faults.values()].reduce((sum, count) => sum + count, 0);
  const sorted = [...result.convergeMs].sort((a, b) => a - b);
  const converge = sorted.length > 0 ? `${sorted[Math.floor(sorted.length / 2)]}/${sorted.at(-1)} ms` : "—";
  const { applied, refused, failed } = result.requests;
  return (
    `soak seed=${result.seed} minutes=${result.minutes} rounds=${result.rounds} faults=${total} (${faults}) ` +
    `schedules=${result.schedules} requests=${applied + refused + failed} (applied ${applied}, refused ${refused}, failed ${failed}) ` +
    `starts=${result.starts} stops=${result.stops} converged p50/max=${converge} load max=${Math.max(0, ...result.load).toFixed(1)} crashes=${result.crashes.length} violations=${result.violations.length}`
  );
}
