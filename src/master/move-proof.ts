import type { Etcd3, IKeyValue, IRequestOp } from "etcd3";
import type { Labels } from "../balancer/index.js";
import {
  type BegunMove,
  hasLease,
  type KeyLayout,
  keyText,
  type Logger,
  prefixRange,
  readRangesPaged,
  readRecord,
  requestDeadline,
  type TaskKeyParts,
  workerInfoSchema,
} from "../node/index.js";
import { type Cordons, parseCordons } from "./controls.js";
import { registeredWorker } from "./registered.js";
import type { Verdict } from "./move-decision.js";

/** The warning (one per key) when a move record no leader wrote is deleted. */
export const FORGED_MOVE = "move record not written by a leader removed";
/** The warning (one per key) when a move record whose history etcd compacted is deleted (see `decideMove`). */
export const UNPROVEN_MOVE = "move record whose history is compacted removed";
/** The warning (one per key) when a move record whose history etcd compacted is finished (see `decideMove`). */
export const UNPROVEN_MOVE_FINISHED =
  "move record whose history is compacted finished: its task is generated and assigned nowhere";

/** A move record read from etcd, well formed. */
export interface ReadMove {
  taskId: string;
  record: BegunMove;
  kv: IKeyValue;
}

/** Records whose history one transaction reads (two ranges each). */
const PER_TXN = 60;

/**
 * Whether a leader wrote each record, from etcd's history. A leader writes a record in the transaction
 * that deletes `/R/task/<from>/<taskId>`, and a later rewrite (a schedule re-targeting the move) keeps
 * its create revision C; so a record is genuine when that key existed at revision C - 1 and is gone at
 * C. A record written by hand proves nothing of the kind ("forged"): completing it would write a task no
 * one generated, or a second assignment of one running elsewhere — and a paused leader would write it.
 * When etcd has compacted revision C - 1 the proof is lost ("compacted"; `decideMove` says what then).
 */
export async function moveVerdicts(client: Etcd3, keys: KeyLayout, moves: ReadMove[]): Promise<Verdict[]> {
  const verdicts: Verdict[] = [];
  for (let i = 0; i < moves.length; i += PER_TXN)
    verdicts.push(...(await judge(client, keys, moves.slice(i, i + PER_TXN))));
  return verdicts;
}

/** Deletes the records decided against, each while unchanged since read, with one warning naming the key. */
export async function deleteRejected(
  client: Etcd3,
  rejected: Array<{ move: ReadMove; verdict: "forged" | "compacted"; reason: string }>,
  logger: Logger,
): Promise<void> {
  for (let i = 0; i < rejected.length; i += PER_TXN) {
    const part = rejected.slice(i, i + PER_TXN);
    const deleted = await deleteUnchanged(
      client,
      part.map(({ move }) => move.kv),
    );
    part.forEach(({ move, verdict, reason }, j) => {
      if (!deleted[j]) return;
      const { from, to } = move.record;
      const key = move.kv.key.toString();
      logger.warn({ key, from, to, reason }, verdict === "compacted" ? UNPROVEN_MOVE : FORGED_MOVE);
    });
  }
}

/** What etcd says now around the records whose history is compacted (see `readMoveFacts`). */
export interface MoveFactsRead {
  /** Every assigned task id → the workers holding `/R/task/<worker>/<id>`. */
  assignedTo: Map<string, string[]>;
  /** The records' task ids → the workers with a status key for it. */
  reportedBy: Map<string, string[]>;
  /** Workers with a live registration → their labels. */
  registered: Map<string, Labels | undefined>;
  cordons: Cordons;
  revision: number;
}

/**
 * For the records whose history is compacted: where every task is assigned, the workers reporting the
 * records' tasks, the live registrations and the cordons, read at one revision (task and status keys
 * only; once per term, and only when such a record exists).
 */
export async function readMoveFacts(
  client: Etcd3,
  keys: KeyLayout,
  taskIds: readonly string[],
  logger: Logger,
): Promise<MoveFactsRead> {
  const read = await readRangesPaged(client, [
    prefixRange(keys.tasksPrefix, { keys_only: true }),
    prefixRange(keys.statusPrefix, { keys_only: true }),
    prefixRange(keys.workersPrefix),
    prefixRange(keys.cordonsPrefix),
    prefixRange(keys.drainingPrefix),
  ]);
  const [tasks = [], statuses = [], workers = [], cordons = [], draining = []] = read.ranges;
  const wanted = new Set(taskIds);
  const byTask = (kvs: IKeyValue[], parse: (key: string) => TaskKeyParts | undefined, all: boolean) => {
    const found = new Map<string, string[]>();
    for (const kv of kvs) {
      const parts = parse(kv.key.toString());
      if (!parts || (!all && !wanted.has(parts.taskId))) continue;
      found.set(parts.taskId, [...(found.get(parts.taskId) ?? []), parts.worker]);
    }
    return found;
  };
  const registered = new Map<string, Labels | undefined>();
  for (const kv of workers) {
    const key = keyText(kv.key, logger);
    const name = key === undefined ? undefined : keys.parseWorker(key);
    if (!name || key === undefined || !hasLease(kv, logger)) continue;
    const info = readRecord(workerInfoSchema, key, kv.value, logger);
    registered.set(name, registeredWorker(name, info, logger).labels);
  }
  return {
    assignedTo: byTask(tasks, (key) => keys.parseTask(key), true),
    reportedBy: byTask(statuses, (key) => keys.parseStatus(key), false),
    registered,
    cordons: parseCordons(keys, cordons, draining, logger),
    revision: read.revision,
  };
}

/** Deletes each of `kvs` while its mod revision is still the one read; whether each was deleted. */
export async function deleteUnchanged(client: Etcd3, kvs: IKeyValue[]): Promise<boolean[]> {
  if (kvs.length === 0) return [];
  const success = kvs.map(({ key, mod_revision }): IRequestOp => ({
    request_txn: {
      compare: [{ key, target: "Mod", result: "Equal", mod_revision }],
      success: [{ request_delete_range: { key } }],
      failure: [],
    },
  }));
  const done = await client.kv.txn({ compare: [], success, failure: [] }, requestDeadline());
  return kvs.map((_kv, i) => done.responses[i]?.response_txn?.succeeded === true);
}

/** Each move's verdict: one transaction for them all, or (history compacted) one per move. */
async function judge(client: Etcd3, keys: KeyLayout, moves: ReadMove[]): Promise<Verdict[]> {
  try {
    return await readHistory(client, keys, moves);
  } catch (error) {
    if (!isCompacted(error)) throw error;
  }
  const verdicts: Verdict[] = [];
  for (const move of moves) {
    try {
      verdicts.push(...(await readHistory(client, keys, [move])));
    } catch (error) {
      if (!isCompacted(error)) throw error;
      verdicts.push("compacted");
    }
  }
  return verdicts;
}

/** Whether each move's old task key existed just before its record was created, and was gone at it. */
async function readHistory(client: Etcd3, keys: KeyLayout, moves: ReadMove[]): Promise<Verdict[]> {
  const success = moves.flatMap(({ taskId, record, kv }): IRequestOp[] => {
    const key = Buffer.from(keys.task(record.from, taskId));
    const created = Number(kv.create_revision);
    return [
      { request_range: { key, keys_only: true, revision: String(created - 1) } },
      { request_range: { key, keys_only: true, revision: String(created) } },
    ];
  });
  const read = await client.kv.txn({ compare: [], success, failure: [] }, requestDeadline());
  return moves.map((_move, i) => {
    const before = read.responses[2 * i]?.response_range?.kvs.length ?? 0;
    const at = read.responses[2 * i + 1]?.response_range?.kvs.length ?? 0;
    return before > 0 && at === 0 ? "genuine" : "forged";
  });
}

function isCompacted(error: unknown): boolean {
  return error instanceof Error && error.message.includes("compacted");
}
