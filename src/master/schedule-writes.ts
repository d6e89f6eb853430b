import type { WriteOp } from "./batches.js";
import { beginMove, completeMove } from "./begun-moves.js";
import type { PlannedPut } from "./handoff.js";
import type { ScheduleContext } from "./schedule.js";

/**
 * Writes a schedule's removals, then its puts, and returns its decision on the moves begun before it
 * (task id → where the plan now puts it, or undefined: no longer placed), for `HandoffGate.replan` once
 * the schedule is applied. Held tasks are assigned nowhere in the schedule's read, so the plan places
 * them again: those puts are the holds' new targets, never written here. Removals and additions are
 * refused by etcd once schedules are paused; a put of a task whose removal this schedule wrote completes
 * a move begun, so it is written even then (before the pause refusal is thrown). With the hand-off gate
 * such a removal carries the move's record, and a completion not written is left to the gate, so the move
 * finishes whatever happens to this schedule or this leader.
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
  const moving = new Map(fresh.map((put) => [put.taskId, put]));
  // Task id → the worker it was removed from, and the revision of the last removal.
  const removed = new Map<string, string>();
  let removedAt = 0;
  let stopped: unknown;
  await writer
    .apply(
      removals.map((removal) => {
        const parts = context.handoffs ? keys.parseTask(removal.key) : undefined;
        const put = parts && moving.get(parts.taskId);
        return put ? beginMove(keys, removal, parts.worker, put) : removal;
      }),
      {
        signal,
        unlessPaused: true,
        onCommitted: (ops, revision) => {
          removedAt = Math.max(removedAt, revision);
          for (const op of ops) {
            const parts = keys.parseTask(op.key);
            if (parts) removed.set(parts.taskId, parts.worker);
          }
        },
      },
    )
    .catch((error: unknown) => {
      stopped = error;
    });
  const begun = fresh.flatMap((put) => {
    const from = removed.get(put.taskId);
    if (from === undefined) return [];
    return [context.handoffs ? { ...put, recorded: { from } } : put];
  });
  const written = new Set<string>();
  await writePuts(context, begun, false, written).catch((error: unknown) => {
    // A completion not written is the gate's (its record is in etcd): it writes it once the owner stopped it.
    const gate = context.handoffs;
    const held = gate?.held();
    gate?.holdBegun(
      begun.filter((put) => !written.has(put.key) && !held?.has(put.taskId)),
      removedAt,
    );
    throw error;
  });
  if (stopped !== undefined) throw stopped;
  await writePuts(
    context,
    fresh.filter((put) => !removed.has(put.taskId)),
    true,
  );
  return replanned;
}

/** Writes `puts` in priority order; with the hand-off gate, those another worker still runs wait for it. */
async function writePuts(
  context: ScheduleContext,
  puts: PlannedPut[],
  unlessPaused: boolean,
  written?: Set<string>,
): Promise<void> {
  if (puts.length === 0) return;
  let immediate = puts;
  if (context.handoffs) {
    const split = await context.handoffs.partition(puts);
    context.handoffs.hold(split.held, split.revision);
    immediate = split.ready;
  }
  await context.writer.apply(
    immediate.map((put) => completeMove(context.keys, put)),
    {
      signal: context.signal,
      unlessPaused,
      onCommitted: (ops) => {
        for (const op of ops) written?.add(op.key);
      },
    },
  );
}
