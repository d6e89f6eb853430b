import type { Etcd3, IKeyValue } from "etcd3";
import {
  type BegunMove,
  type KeyLayout,
  keyText,
  type Logger,
  moveRecordSchema,
  readPrefixPaged,
  readRecord,
} from "../node/index.js";
import { delay, exponentialBackoff } from "../runtime/index.js";
import type { WriteOp } from "./batches.js";
import type { HandoffGate } from "./handoff.js";
import type { PlannedPut } from "./handoff-puts.js";
import { deleteUnchanged, genuineMoves, type ReadMove } from "./move-proof.js";

/**
 * Moves begun survive the leader that began them. The transaction that removes a task from its old
 * owner also writes `/R/move/<taskId>` = `{from, to, value, priority?}`; the one that writes the task
 * to its new owner deletes it. A new leader loads the records when its term starts and finishes those
 * hand-offs through its gate, whatever its own schedules decide. Cost: no transaction of its own (one
 * more operation in the removal's and in the completion's), and one read per term after a first start.
 */

/** The removal that begins moving `put`'s task off `from`, with its move record in the same transaction. */
export function beginMove(keys: KeyLayout, removal: WriteOp, from: string, put: PlannedPut): WriteOp {
  return { ...removal, with: [recordPut(keys, from, put)] };
}

/** The write of `put`; a recorded move's deletes its record in the same transaction. */
export function completeMove(keys: KeyLayout, put: PlannedPut): WriteOp {
  const write: WriteOp = { type: "put", key: put.key, value: put.value, priority: put.priority };
  return put.recorded ? { ...write, with: [{ type: "delete", key: keys.move(put.taskId) }] } : write;
}

/** The record of a move whose target a schedule changed (`put`), or deleted (`put` undefined: dropped). */
export function retargetMove(keys: KeyLayout, taskId: string, from: string, put?: PlannedPut): WriteOp {
  return put ? recordPut(keys, from, put) : { type: "delete", key: keys.move(taskId) };
}

/**
 * Every move record under the root that a leader wrote, as the puts that finish them (`recorded`),
 * and the revision read at. A record that is not one (bad key, bad JSON, wrong shape, bad worker
 * names), or that no leader wrote (see `genuineMoves`), is deleted while unchanged, with one warning
 * naming the key.
 */
export async function loadBegunMoves(
  client: Etcd3,
  keys: KeyLayout,
  logger: Logger,
): Promise<{ moves: PlannedPut[]; revision: number }> {
  const read = await readPrefixPaged(client, keys.movesPrefix);
  const wellFormed: ReadMove[] = [];
  const malformed: IKeyValue[] = [];
  for (const kv of read.kvs) {
    const key = keyText(kv.key, logger);
    const taskId = key === undefined ? undefined : keys.parseMove(key);
    if (key !== undefined && taskId === undefined) logger.warn({ key }, "bad record in etcd");
    const record =
      key === undefined || taskId === undefined
        ? undefined
        : readRecord(moveRecordSchema, key, kv.value, logger);
    if (record && taskId !== undefined) wellFormed.push({ taskId, record, kv });
    else malformed.push(kv);
  }
  // Warned about as read; deleted, so no later term warns again.
  for (let i = 0; i < malformed.length; i += 60) await deleteUnchanged(client, malformed.slice(i, i + 60));
  const genuine = await genuineMoves(client, keys, wellFormed, logger);
  return {
    moves: genuine.map(({ taskId, record }) => plannedPut(keys, taskId, record)),
    revision: read.revision,
  };
}

/**
 * Moves a leader began and did not finish are held by a new term's gate before its first schedule reads,
 * so they finish whatever its schedules decide; the read is retried until it succeeds or the term ends.
 */
export async function resumeBegunMoves(
  client: Etcd3,
  keys: KeyLayout,
  gate: HandoffGate,
  logger: Logger,
  signal: AbortSignal,
): Promise<void> {
  const backoff = exponentialBackoff({ initialMs: 200, maxMs: 2_000 });
  for (;;) {
    try {
      const { moves, revision } = await loadBegunMoves(client, keys, logger);
      if (moves.length > 0)
        logger.info({ tasks: moves.length }, "finishing moves begun by an earlier leader");
      gate.holdBegun(moves, revision);
      return;
    } catch (error) {
      signal.throwIfAborted();
      logger.warn({ err: error }, "reading the moves begun failed; reading again");
      await delay(backoff.next(), signal);
    }
  }
}

function plannedPut(keys: KeyLayout, taskId: string, record: BegunMove): PlannedPut {
  return {
    taskId,
    worker: record.to,
    key: keys.task(record.to, taskId),
    value: record.value,
    priority: record.priority ?? 0,
    recorded: { from: record.from },
  };
}

function recordPut(keys: KeyLayout, from: string, put: PlannedPut): WriteOp {
  const record: BegunMove = { from, to: put.worker, value: put.value, priority: put.priority };
  return { type: "put", key: keys.move(put.taskId), value: JSON.stringify(record) };
}
