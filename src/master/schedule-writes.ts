import type { KeyLayout } from "../node/index.js";
import type { WriteOp } from "./batches.js";
import { beginMove, completeMove } from "./begun-moves.js";
import type { HandoffGate, HeldPut, PlannedPut } from "./handoff.js";
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
  live: ReadonlySet<string>,
): Promise<Map<string, PlannedPut | undefined>> {
  const { keys, signal, writer } = context;
  const held = context.handoffs?.held() ?? new Map<string, PlannedPut>();
  const replanned = new Map<string, PlannedPut | undefined>([...held.keys()].map((id) => [id, undefined]));
  const fresh: PlannedPut[] = [];
  for (const put of puts) {
    if (held.has(put.taskId)) replanned.set(put.taskId, put);
    else fresh.push(put);
  }
  const direct = await directMoves(context, removals, fresh, live);
  const moving = new Map(fresh.map((put) => [put.taskId, put]));
  // A task on two workers (hostile data) is removed twice: only the first removal carries the move record
  // (two puts of one key in a transaction are refused by etcd, and that schedule would fail for good).
  const recorded = new Set<string>();
  // Task id → the worker it was removed from (the recorded removal's, when that one committed).
  const removed = new Map<string, string>();
  let removedAt = 0;
  let stopped: unknown;
  await writer
    .apply(
      [
        ...direct.ops,
        ...removals
          .filter((removal) => !direct.removals.has(removal))
          .map((removal) => {
            const parts = context.handoffs ? keys.parseTask(removal.key) : undefined;
            const put = parts && !recorded.has(parts.taskId) ? moving.get(parts.taskId) : undefined;
            if (!parts || !put) return removal;
            recorded.add(parts.taskId);
            return beginMove(keys, removal, parts.worker, put);
          }),
      ],
      {
        signal,
        unlessPaused: true,
        onCommitted: (ops, revision) => {
          removedAt = Math.max(removedAt, revision);
          for (const op of ops) {
            // A direct move (a put carrying its removal) is done: nothing of it is left to write.
            if (op.type !== "delete") continue;
            const parts = keys.parseTask(op.key);
            if (parts && (op.with || !removed.has(parts.taskId))) removed.set(parts.taskId, parts.worker);
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
  await writePuts(context, begun, true, written).catch((error: unknown) => {
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
    fresh.filter((put) => !removed.has(put.taskId) && !direct.taskIds.has(put.taskId)),
    false,
  );
  return replanned;
}

/**
 * The moves off workers gone from the schedule's read whose old owner reports no status for the task
 * (its lease ended with its registration: the task runs nowhere) go as one transaction each, the put
 * carrying the removal, in the puts' order, with no move record: such a task is never between owners,
 * so a leader stopped halfway leaves each one where it was or where it goes, and a crash's moves cost
 * two operations each instead of four and one round of writes instead of two. A gone worker that still
 * reports the task (its registration deleted by hand, its lease alive) is moved by a recorded hand-off.
 * Should it claim a task between this read and the write, the task's run lock (held by it until it
 * stops) keeps the new owner waiting: never two runs.
 */
async function directMoves(
  context: ScheduleContext,
  removals: readonly WriteOp[],
  fresh: readonly PlannedPut[],
  live: ReadonlySet<string>,
): Promise<{ ops: WriteOp[]; removals: Set<WriteOp>; taskIds: Set<string> }> {
  const chosen = { ops: [] as WriteOp[], removals: new Set<WriteOp>(), taskIds: new Set<string>() };
  const gate = context.handoffs;
  if (!gate) return chosen;
  // Task id → its one removal off a gone worker (a task on two workers is left to the recorded path).
  const goneFrom = new Map<string, { removal: WriteOp; from: string } | undefined>();
  for (const removal of removals) {
    const parts = context.keys.parseTask(removal.key);
    if (!parts) continue;
    const seen = goneFrom.has(parts.taskId);
    goneFrom.set(parts.taskId, seen || live.has(parts.worker) ? undefined : { removal, from: parts.worker });
  }
  const candidates = fresh.flatMap((put) => {
    const gone = goneFrom.get(put.taskId);
    return gone ? [{ ...gone, put }] : [];
  });
  if (candidates.length === 0) return chosen;
  const read = await gate.source.readWorkers([...new Set(candidates.map((candidate) => candidate.from))]);
  const reporting = new Set(read.keys);
  for (const { removal, from, put } of candidates) {
    if (reporting.has(context.keys.status(from, put.taskId))) continue;
    chosen.ops.push({ type: "put", key: put.key, value: put.value, priority: put.priority, with: [removal] });
    chosen.removals.add(removal);
    chosen.taskIds.add(put.taskId);
  }
  return chosen;
}

/**
 * Writes `puts` in priority order; with the hand-off gate, those another worker still runs wait for it.
 * `begun`: every put is a move this schedule's removal began (`recorded`), blocked by its old owner only.
 */
async function writePuts(
  context: ScheduleContext,
  puts: PlannedPut[],
  begun: boolean,
  written?: Set<string>,
): Promise<void> {
  if (puts.length === 0) return;
  let immediate = puts;
  if (context.handoffs) {
    const split = begun
      ? await partitionBegun(context.handoffs, context.keys, puts)
      : await context.handoffs.partition(puts);
    context.handoffs.hold(split.held, split.revision);
    immediate = split.ready;
  }
  await context.writer.apply(
    immediate.map((put) => completeMove(context.keys, put)),
    {
      signal: context.signal,
      // A move begun completes even while paused (its task was removed from its old owner).
      unlessPaused: !begun,
      onCommitted: (ops) => {
        for (const op of ops) written?.add(op.key);
      },
    },
  );
}

/**
 * `HandoffGate.partition` for moves begun by this schedule's removals (`recorded` puts, read after
 * those removals): as for the pacer's moves (`holdBegun`), only the old owner can still hold the task
 * (a hand-off wrote it there only once every other status was gone), so only the old owners' status
 * keys are read — after a crash, the gone workers' empty prefixes instead of every worker's statuses.
 */
async function partitionBegun(
  gate: HandoffGate,
  keys: KeyLayout,
  puts: readonly PlannedPut[],
): Promise<{ ready: PlannedPut[]; held: HeldPut[]; revision: number }> {
  const from = (put: PlannedPut) => put.recorded?.from ?? "";
  const read = await gate.source.readWorkers([...new Set(puts.map(from))]);
  const present = new Set(read.keys);
  const ready: PlannedPut[] = [];
  const held: HeldPut[] = [];
  for (const put of puts) {
    const blocker = keys.status(from(put), put.taskId);
    if (present.has(blocker)) held.push({ ...put, from: [from(put)], blockers: [blocker] });
    else ready.push(put);
  }
  return { ready, held, revision: read.revision };
}
