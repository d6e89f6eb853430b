import type { WriteOp } from "./batches.js";
import type { PlannedPut } from "./handoff.js";
import type { ScheduleContext } from "./schedule.js";

/**
 * Writes a schedule's removals, then its puts, and returns its decision on the moves begun before it
 * (task id → where the plan now puts it, or undefined: no longer placed), for `HandoffGate.replan` once
 * the schedule is applied. Held tasks are assigned nowhere in the schedule's read, so the plan places
 * them again: those puts are the holds' new targets, never written here. Removals and additions are
 * refused by etcd once schedules are paused; a put of a task whose removal this schedule wrote completes
 * a move begun, so it is written even then (before the pause refusal is thrown).
 */
export async function writeTaskChanges(
  context: ScheduleContext,
  removals: readonly WriteOp[],
  puts: readonly PlannedPut[],
): Promise<Map<string, PlannedPut | undefined>> {
  const { keys, signal, writer } = context;
  const held = context.handoffs?.held() ?? new Map<string, PlannedPut>();
  const replanned = new Map<string, PlannedPut | undefined>([...held.keys()].map((id) => [id, undefined]));
  const fresh: PlannedPut[] = [];
  for (const put of puts) {
    if (held.has(put.taskId)) replanned.set(put.taskId, put);
    else fresh.push(put);
  }
  const removed = new Set<string>();
  let stopped: unknown;
  await writer
    .apply(removals, {
      signal,
      unlessPaused: true,
      onCommitted: (ops) => {
        for (const op of ops) removed.add(keys.parseTask(op.key)?.taskId ?? "");
      },
    })
    .catch((error: unknown) => {
      stopped = error;
    });
  await writePuts(
    context,
    fresh.filter((put) => removed.has(put.taskId)),
    false,
  );
  if (stopped !== undefined) throw stopped;
  await writePuts(
    context,
    fresh.filter((put) => !removed.has(put.taskId)),
    true,
  );
  return replanned;
}

/** Writes `puts` in priority order; with the hand-off gate, those another worker still runs wait for it. */
async function writePuts(context: ScheduleContext, puts: PlannedPut[], unlessPaused: boolean): Promise<void> {
  if (puts.length === 0) return;
  let immediate = puts;
  if (context.handoffs) {
    const split = await context.handoffs.partition(puts);
    context.handoffs.hold(split.held, split.revision);
    immediate = split.ready;
  }
  await context.writer.apply(
    immediate.map((put) => ({ type: "put", key: put.key, value: put.value, priority: put.priority })),
    { signal: context.signal, unlessPaused },
  );
}
