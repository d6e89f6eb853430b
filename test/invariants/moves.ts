/**
 * A move already begun always finishes: a task the leader removed from its owner while the generator
 * still returned it is written to a worker again within a bound, whatever happens meanwhile (a pause,
 * a refused schedule, a leader change, an owner without a status key). Judged from etcd's history and
 * the harness's record of what the generator returned when.
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

/**
 * Every removal of a task key (at the time the history saw it) after which no key of that task was
 * written within `boundMs`, although every generator answer from shortly before the removal until then
 * returned the task (so no schedule removed it on purpose). Removals less than `boundMs` before
 * `observedUntil` are not judged.
 */
export function stalledMoveProblems(
  history: readonly HistoryEvent[],
  keys: KeyLayout,
  generator: readonly GeneratorChange[],
  boundMs: number,
  observedUntil: number,
  base = 0,
): string[] {
  const generatedThroughout = (task: string, from: number, to: number) =>
    generator.every(
      (change, i) =>
        (generator[i + 1]?.at ?? Number.POSITIVE_INFINITY) <= from ||
        change.at > to ||
        change.tasks.includes(task),
    );
  const problems: string[] = [];
  const puts = new Map<string, number[]>();
  for (const event of history) {
    const task = event.type === "put" && !event.synthetic ? keys.parseTask(event.key) : undefined;
    if (task) puts.set(task.taskId, [...(puts.get(task.taskId) ?? []), event.seenAt]);
  }
  for (const event of history) {
    if (event.type !== "delete" || event.synthetic) continue;
    const task = keys.parseTask(event.key);
    if (!task) continue;
    const removedAt = event.seenAt;
    if (removedAt + boundMs > observedUntil) continue;
    if (!generatedThroughout(task.taskId, removedAt - SCHEDULE_LAG_MS, removedAt + boundMs)) continue;
    const next = (puts.get(task.taskId) ?? []).find((at) => at >= removedAt);
    if (next !== undefined && next - removedAt <= boundMs) continue;
    const after =
      next === undefined ? "never written again" : `written again ${Math.round(next - removedAt)} ms later`;
    problems.push(
      `task ${task.taskId} removed from ${task.worker} at revision ${event.revision} (+${Math.round(removedAt - base)} ms) while still generated, ${after} (bound ${boundMs} ms): a move begun did not finish`,
    );
  }
  return problems;
}
