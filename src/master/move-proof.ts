import type { Etcd3, IKeyValue, IRequestOp } from "etcd3";
import { type BegunMove, type KeyLayout, type Logger, requestDeadline } from "../node/index.js";

/** The warning (one per key) when a move record no leader wrote is deleted. */
export const FORGED_MOVE = "move record not written by a leader removed";
/** The warning (one per key) when a move record whose history etcd compacted is deleted. */
export const UNPROVEN_MOVE = "move record whose history is compacted removed; a schedule places its task";

/** A move record read from etcd, well formed. */
export interface ReadMove {
  taskId: string;
  record: BegunMove;
  kv: IKeyValue;
}

/** Records whose history one transaction reads (two ranges each). */
const PER_TXN = 60;

type Verdict = "genuine" | "forged" | "compacted";

/**
 * The move records a leader wrote, of those read; the others are deleted (each while unchanged since
 * read) with one warning naming the key. A leader writes a record in the transaction that deletes
 * `/R/task/<from>/<taskId>`, and a later rewrite (a schedule re-targeting the move) keeps its create
 * revision C; so a record is genuine when that key existed at revision C - 1 and is gone at C. A
 * record written by hand proves nothing of the kind: completing it would write a task no one
 * generated, or a second assignment of one running elsewhere — and a paused leader would write it.
 *
 * When etcd has compacted revision C - 1 the proof is lost: such a record (a move begun long before,
 * whose old owner never stopped the task) is deleted too, and its task, assigned nowhere, is placed by
 * the next applied schedule like any unassigned generated task (while paused: once resumed). Trusting
 * it instead could write a forged move; the cost of this choice is that wait, in a rare case.
 */
export async function genuineMoves(
  client: Etcd3,
  keys: KeyLayout,
  moves: ReadMove[],
  logger: Logger,
): Promise<ReadMove[]> {
  const verdicts: Verdict[] = [];
  for (let i = 0; i < moves.length; i += PER_TXN)
    verdicts.push(...(await judge(client, keys, moves.slice(i, i + PER_TXN))));
  const rejected = moves.flatMap((move, i) =>
    verdicts[i] === "genuine" ? [] : [{ move, verdict: verdicts[i] }],
  );
  for (let i = 0; i < rejected.length; i += PER_TXN) {
    const part = rejected.slice(i, i + PER_TXN);
    const deleted = await deleteUnchanged(
      client,
      part.map(({ move }) => move.kv),
    );
    part.forEach(({ move, verdict }, j) => {
      if (!deleted[j]) return;
      const key = move.kv.key.toString();
      const { from, to } = move.record;
      if (verdict === "compacted") logger.warn({ key, from, to }, UNPROVEN_MOVE);
      else
        logger.warn(
          {
            key,
            from,
            to,
            reason: `no leader removed the task from "${from}" in the transaction that wrote it`,
          },
          FORGED_MOVE,
        );
    });
  }
  return moves.filter((_move, i) => verdicts[i] === "genuine");
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
