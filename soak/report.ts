import type { NodeRun } from "./fleet.js";
import type { Action } from "./plan.js";
import type { SoakResult } from "./run.js";

/** The one summary line. */
export function summary(result: SoakResult): string {
  const faults = [...result.faults].map(([kind, count]) => `${kind} ${count}`).join(", ");
  const total = [...result.faults.values()].reduce((sum, count) => sum + count, 0);
  const sorted = [...result.convergeMs].sort((a, b) => a - b);
  const converge = sorted.length > 0 ? `${sorted[Math.floor(sorted.length / 2)]}/${sorted.at(-1)} ms` : "—";
  const moves = [...result.moveMs].sort((a, b) => a - b);
  const moved =
    moves.length > 0
      ? `moves begun=${moves.length} finished p50/p99/max=${[0.5, 0.99, 1].map((q) => Math.round(moves[Math.ceil(q * moves.length) - 1])).join("/")} ms `
      : "moves begun=0 ";
  const { applied, refused, failed } = result.requests;
  return (
    `soak seed=${result.seed} minutes=${result.minutes} rounds=${result.rounds} faults=${total} (${faults}) ` +
    `schedules=${result.schedules} requests=${applied + refused + failed} (applied ${applied}, refused ${refused}, failed ${failed}) ` +
    `starts=${result.starts} stops=${result.stops} converged p50/max=${converge} ${moved}load max=${Math.max(0, ...result.load).toFixed(1)} crashes=${result.crashes.length} violations=${result.violations.length}`
  );
}

/** One fault as the round's log line names it. */
export function describe(action: Action): string {
  switch (action.kind) {
    case "generator":
      return `generator ${action.tasks.length}`;
    case "latency":
      return `latency ${action.node} ${action.ms}ms`;
    case "isolate":
      return `isolate etcd${action.member}`;
    case "schedule":
      return action.allowRemoval ? "schedule --allow-removal" : "schedule";
    default:
      return "node" in action
        ? `${action.kind} ${action.node}`
        : "worker" in action
          ? `${action.kind} ${action.worker}`
          : action.kind;
  }
}

/** Processes that ended without the soak asking, or did not exit 0 on SIGTERM. */
export function unexpectedExits(runs: readonly NodeRun[]): string[] {
  return runs.flatMap((run) => {
    if (!run.exit) return [];
    const how = run.exit.code ?? run.exit.signal;
    if (!run.signalled) return [`${run.name} (pid ${run.pid}) exited by itself (${how})`];
    // Killed by the signal itself: it came before the process had set up its handler (still starting).
    if (run.signalled === "SIGTERM" && run.exit.code !== 0 && run.exit.signal !== "SIGTERM")
      return [`${run.name} (pid ${run.pid}) exited ${how} on SIGTERM`];
    return [];
  });
}
