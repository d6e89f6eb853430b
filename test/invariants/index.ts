/**
 * The promises escheduler makes under failure, as checks over what really happened: the handlers'
 * own start/stop records, what a harness did to each process (kills, pauses), the etcd state, and a
 * watch-recorded history of every write under the root. Each check returns the violations it found,
 * one sentence each (empty: the promise held). One checker, shared by the chaos tests and the soak.
 */
import type { KeyLayout } from "../../src/node/index.js";
import type { HistoryEvent } from "./history.js";
import { type GeneratorChange, stalledMoveProblems } from "./moves.js";
import { doubleRuns, type ProcessFate, runIntervals, type TaskEvent } from "./runs.js";
import { deposedWriteProblems, type HistoryGaps, pausedWriteProblems, silentMasters } from "./writes.js";

export * from "./convergence.js";
export * from "./etcd-retry.js";
export * from "./history.js";
export * from "./moves.js";
export * from "./runs.js";
export * from "./writes.js";

/** What a run left behind, for `safetyProblems`. */
export interface RunFacts {
  /** The recording handlers' start/stop lines. */
  events: readonly TaskEvent[];
  /** What the harness did to each process. */
  fates: readonly ProcessFate[];
  /** Every write under the root, and the revisions the recorder could not replay. */
  history: { events: readonly HistoryEvent[]; gaps: HistoryGaps };
  keys: KeyLayout;
  /** How long a resumed (SIGCONT) worker may take to stop the tasks it lost while paused. */
  wakeGraceMs?: number;
  /** Time origin for the messages' intervals. */
  base?: number;
  /** With what the generator returned when: every move begun finishes within `boundMs` (see `stalledMoveProblems`). */
  moves?: { generator: readonly GeneratorChange[]; boundMs: number; observedUntil: number };
}

/**
 * The promises that hold at every moment, whatever failed: no task on two workers at once (from the
 * handlers' own records), no write by a deposed leader and no schedule write while paused (from etcd's
 * history), and, given the generator's answers, every move begun finishes. Convergence, which holds
 * only once the cluster is quiet, is `convergenceProblems`.
 */
export function safetyProblems(facts: RunFacts): string[] {
  const { intervals, problems } = runIntervals(facts.events, facts.fates, { wakeGraceMs: facts.wakeGraceMs });
  const { events, gaps } = facts.history;
  return [
    ...problems,
    ...doubleRuns(intervals, facts.base),
    ...deposedWriteProblems(events, facts.keys, silentMasters(facts.fates), gaps),
    ...pausedWriteProblems(events, facts.keys, gaps),
    ...(facts.moves
      ? stalledMoveProblems(
          events,
          facts.keys,
          facts.moves.generator,
          facts.moves.boundMs,
          facts.moves.observedUntil,
          facts.base,
        )
      : []),
  ];
}
