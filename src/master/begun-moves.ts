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
import type { HeldPut, PlannedPut } from "./handoff-puts.js";
import { cordonMode } from "./controls.js";
import { escalate, type FailureInputs } from "./escalation-input.js";
import { type Generator, generateTasks } from "./generator.js";
import { decideMove, type GeneratedTask, generatedTasks, type MoveFacts } from "./move-decision.js";
import {
  deleteRejected,
  deleteUnchanged,
  moveVerdicts,
  readMoveFacts,
  type ReadMove,
  UNPROVEN_MOVE_FINISHED,
} from "./move-proof.js";

/**
 * Moves begun survive the leader that began them. The transaction that removes a task from its old
 * owner also writes `/R/move/<taskId>` = `{from, to, value, priority?}`; the one that writes the task
 * to its new owner deletes it. A new leader loads the records when its term starts and finishes those
 * hand-offs through its gate, whatever its own schedules decide. Cost: no transaction of its own (one
 * more operation in the removal's and in the completion's), and one read per term after a first start
 * (with a generator call and a keys-only read of tasks and statuses when a record's history is compacted).
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

/** What a term resumes moves with; its generator runs only when a record's history is compacted. */
export interface ResumeContext {
  client: Etcd3;
  keys: KeyLayout;
  logger: Logger;
  generator: Generator;
  settings: { timeoutMs: number };
}

/** The term's view of what is generated now, for `decideMove`. */
export interface TaskSource {
  generated(): Promise<ReadonlyMap<string, GeneratedTask>>;
}

/**
 * The move records under the root to finish, as held puts (`recorded`), and the revision they were read
 * at. A record that is not one (bad key, bad JSON, wrong shape, bad worker names), or that `decideMove`
 * rejects (no leader wrote it, or its history is compacted and a schedule would not finish it), is
 * deleted while unchanged, with one warning naming the key.
 */
export async function loadBegunMoves(
  client: Etcd3,
  keys: KeyLayout,
  logger: Logger,
  tasks: TaskSource,
  signal: AbortSignal,
): Promise<{ moves: HeldPut[]; revision: number }> {
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
  const verdicts = await moveVerdicts(client, keys, wellFormed);
  const unproven = wellFormed.filter((_move, i) => verdicts[i] === "compacted");
  const facts =
    unproven.length > 0 ? await unprovenFacts(client, keys, logger, unproven, tasks, signal) : undefined;
  const finished: HeldPut[] = [];
  const rejected: Parameters<typeof deleteRejected>[1] = [];
  wellFormed.forEach((move, i) => {
    const known = facts?.of(move.taskId, move.record.to);
    const decision = decideMove(keys, move.taskId, move.record, verdicts[i], known);
    if (decision.action === "delete") rejected.push({ move, ...decision });
    else finished.push(decision.put);
    if (decision.action === "finish" && verdicts[i] === "compacted") {
      const { from, to } = move.record;
      logger.warn({ key: move.kv.key.toString(), from, to }, UNPROVEN_MOVE_FINISHED);
    }
  });
  await deleteRejected(client, rejected, logger);
  return { moves: finished, revision: Math.max(read.revision, facts?.revision ?? 0) };
}

/** The generated tasks (once), and what etcd says of the unproven records' tasks and targets. */
async function unprovenFacts(
  client: Etcd3,
  keys: KeyLayout,
  logger: Logger,
  unproven: ReadMove[],
  tasks: TaskSource,
  signal: AbortSignal,
): Promise<{ of: (taskId: string, to: string) => MoveFacts; revision: number }> {
  let generated: ReadonlyMap<string, GeneratedTask> = new Map();
  let generatorError: string | undefined;
  try {
    generated = await tasks.generated();
  } catch (error) {
    // An ending term leaves the records to the next leader.
    signal.throwIfAborted();
    generatorError = error instanceof Error ? error.message : String(error);
  }
  const read = await readMoveFacts(
    client,
    keys,
    unproven.map((move) => move.taskId),
    logger,
  );
  // The generated task ids by key and by antiKey, once; then the workers holding a task's fellows.
  const byField = { key: new Map<string, string[]>(), antiKey: new Map<string, string[]>() };
  for (const [id, { task }] of generated)
    for (const field of ["key", "antiKey"] as const) {
      const value = task[field];
      if (value === undefined) continue;
      const ids = byField[field].get(value);
      if (ids) ids.push(id);
      else byField[field].set(value, [id]);
    }
  const sharing = (field: "key" | "antiKey", taskId: string): string[] => {
    const value = generated.get(taskId)?.task[field];
    const fellows = value === undefined ? [] : (byField[field].get(value) ?? []);
    return fellows.filter((id) => id !== taskId).flatMap((id) => read.assignedTo.get(id) ?? []);
  };
  const of = (taskId: string, to: string): MoveFacts => {
    const registered = read.registered.has(to);
    const mode = cordonMode(read.cordons, to);
    const labels = read.registered.get(to);
    return {
      assignedTo: read.assignedTo.get(taskId) ?? [],
      reportedBy: read.reportedBy.get(taskId) ?? [],
      generated: generated.get(taskId),
      ...(generatorError === undefined ? {} : { generatorError }),
      ...(registered ? { target: { ...(labels ? { labels } : {}), ...(mode ? { mode } : {}) } } : {}),
      keyWorkers: sharing("key", taskId),
      antiKeyWorkers: sharing("antiKey", taskId),
    };
  };
  return { of, revision: read.revision };
}

/**
 * Moves a leader began and did not finish are held by a new term's gate before its first schedule reads,
 * so they finish whatever its schedules decide; the read is retried until it succeeds or the term ends.
 */
export async function resumeBegunMoves(
  context: ResumeContext,
  gate: HandoffGate,
  failures: FailureInputs | undefined,
  workers: () => string[],
  signal: AbortSignal,
): Promise<void> {
  const { client, keys, logger } = context;
  const tasks: TaskSource = {
    generated: async () => {
      const { tasks: valid, positions } = await generateTasks(context.generator, {
        workers: workers(),
        logger,
        signal,
        timeoutMs: context.settings.timeoutMs,
      });
      return generatedTasks(escalate(valid, failures, Date.now(), positions));
    },
  };
  const backoff = exponentialBackoff({ initialMs: 200, maxMs: 2_000 });
  for (;;) {
    try {
      const { moves, revision } = await loadBegunMoves(client, keys, logger, tasks, signal);
      if (moves.length > 0)
        logger.info({ tasks: moves.length }, "finishing moves begun by an earlier leader");
      gate.hold(moves, revision);
      return;
    } catch (error) {
      signal.throwIfAborted();
      logger.warn({ err: error }, "reading the moves begun failed; reading again");
      await delay(backoff.next(), signal);
    }
  }
}

function recordPut(keys: KeyLayout, from: string, put: PlannedPut): WriteOp {
  const record: BegunMove = { from, to: put.worker, value: put.value, priority: put.priority };
  return { type: "put", key: keys.move(put.taskId), value: JSON.stringify(record) };
}
