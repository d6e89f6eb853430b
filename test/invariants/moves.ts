/**
 * A move already begun always finishes: a task the leader removed from its owner while the generator
 * still returned it is written to a worker again within a bound, whatever happens meanwhile (a pause,
 * a refused schedule, a leader change, an owner without a status key). Judged from etcd's history and
 * the harness's record of what the generator returned when. The bound is the harness's to give: the
 * longest chain of its faults that can legitimately hold a move up (the soak derives it from its TTL,
 * rebalance-wait and fault durations, see MOVE_BOUND_MS in soak/run.ts).
 */
import type { KeyLayout } from "../../src/node/index.js";
import type { HistoryEvent } from "./history.js";

/** What the generator returned from `at` (wall-clock ms) on. */
export interface GeneratorChange {
  at: number;
  tasks: readonly string[];
}

/** How long before a removal the generator must already have returned the task (a schedule's read to its write). */
const SCHEDULE_LAG_MS = 10_000;

/** A removal of a task key while the generator kept returning the task: a move begun. */
export interface BegunMoveFinish {
  task: string;
  from: string;
  revision: number;
  removedAt: number;
  /** ms from the removal to the next write of a key of that task; undefined: not written again. */
  finishedMs?: number;
}

/**
 * Every removal of a task key (at the time the history saw it) while every generator answer from
 * shortly before the removal until `removedAt + horizonMs` returned the task (so no schedule removed it
 * on purpose), with how long until a key of that task was written again. Removals less than
 * `horizonMs` before `observedUntil` are left out (not judged yet).
 */
export function begunMoveFinishes(
  history: readonly HistoryEvent[],
  keys: KeyLayout,
  generator: readonly GeneratorChange[],
  horizonMs: number,
  observedUntil: number,
): BegunMoveFinish[] {
  const generatedThroughout = (task: string, from: number, to: number) =>
    generator.every(
      (change, i) =>
        (generator[i + 1]?.at ?? Number.POSITIVE_INFINITY) <= from ||
        change.at > to ||
        change.tasks.includes(task),
    );
  // By revision, not by when seen: a move off a gone worker puts the new key and deletes the old one in
  // one transaction, and the two events of that revision may be seen a millisecond apart either way.
  const puts = new Map<string, Array<{ revision: number; seenAt: number }>>();
  for (const event of history) {
    const task = event.type === "put" && !event.synthetic ? keys.parseTask(event.key) : undefined;
    if (task) puts.set(task.taskId, [...(puts.get(task.taskId) ?? []), event]);
  }
  const finishes: BegunMoveFinish[] = [];
  for (const event of history) {
    if (event.type !== "delete" || event.synthetic) continue;
    const task = keys.parseTask(event.key);
    if (!task) continue;
    const removedAt = event.seenAt;
    if (removedAt + horizonMs > observedUntil) continue;
    if (!generatedThroughout(task.taskId, removedAt - SCHEDULE_LAG_MS, removedAt + horizonMs)) continue;
    const next = (puts.get(task.taskId) ?? []).find((put) => put.revision >= event.revision);
    finishes.push({
      task: task.taskId,
      from: task.worker,
      revision: event.revision,
      removedAt,
      finishedMs: next === undefined ? undefined : Math.max(0, next.seenAt - removedAt),
    });
  }
  return finishes;
}

/** Every move begun (see `begunMoveFinishes`) that did not finish within `boundMs`, one sentence each. */
export function stalledMoveProblems(
  history: readonly HistoryEvent[],
  keys: KeyLayout,
  generator: readonly GeneratorChange[],
  boundMs: number,
  observedUntil: number,
  base = 0,
): string[] {
  return begunMoveFinishes(history, keys, generator, boundMs, observedUntil).flatMap((move) => {
    if (move.finishedMs !== undefined && move.finishedMs <= boundMs) return [];
    const after =
      move.finishedMs === undefined
        ? "never written again"
        : `written again ${Math.round(move.finishedMs)} ms later`;
    return [
      `task ${move.task} removed from ${move.from} at revision ${move.revision} (+${Math.round(move.removedAt - base)} ms) while still generated, ${after} (bound ${boundMs} ms): a move begun did not finish`,
    ];
  });
}
