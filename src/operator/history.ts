import type { Etcd3 } from "etcd3";
import { EschedulerError } from "../errors.js";
import { type HistoryRecord, keyLayout, parseRecord } from "../node/index.js";

export interface HistoryEntry extends HistoryRecord {
  /** The revision in the record's key. */
  revision: number;
}

export interface ReadHistoryOptions {
  /** The newest `limit` records (after the task filter); default 20. */
  limit?: number;
  /** Only records in which this task was added, moved or removed. */
  task?: string;
}

/** The newest schedules, oldest first (so the last line is the latest), optionally only those that touched `task`. */
export async function readHistory(
  client: Etcd3,
  root: string,
  options: ReadHistoryOptions = {},
): Promise<HistoryEntry[]> {
  const limit = options.limit ?? 20;
  if (!Number.isSafeInteger(limit) || limit <= 0) {
    throw new EschedulerError("ERR_CONFIG", `history limit must be a positive whole number (got ${limit})`);
  }
  const keys = keyLayout(root);
  let query = client.getAll().prefix(keys.historyPrefix).sort("Key", "Descend");
  // Filtering by task needs every record; otherwise only the newest `limit`.
  if (options.task === undefined) query = query.limit(limit);
  const kvs = await query.exec();
  const entries: HistoryEntry[] = [];
  for (const kv of kvs.kvs) {
    const revision = keys.parseHistory(kv.key.toString());
    const record = parseRecord<HistoryRecord>(kv.value);
    if (revision === undefined || !record) continue;
    if (options.task !== undefined && !record.moves?.some((move) => move.id === options.task)) continue;
    entries.push({ ...record, revision });
    if (entries.length === limit) break;
  }
  return entries.reverse();
}
