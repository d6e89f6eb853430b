import { type Etcd3, type IKeyValue, SortOrder, SortTarget } from "etcd3";
import { EschedulerError } from "../errors.js";
import {
  type HistoryRecord,
  historyRecordSchema,
  type KeyLayout,
  keyLayout,
  keyText,
  type Logger,
  readRecord,
  requestDeadline,
  silentLogger,
} from "../node/index.js";

export interface HistoryEntry extends HistoryRecord {
  /** The revision in the record's key. */
  revision: number;
}

export interface ReadHistoryOptions {
  /** The newest `limit` records (after the task filter); default 20. */
  limit?: number;
  /** Only records in which this task was added, moved or removed. */
  task?: string;
  /** Where a bad record is reported (once). */
  logger?: Logger;
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
  const logger = options.logger ?? silentLogger;
  const entries: HistoryEntry[] = [];
  for await (const entry of historyNewestFirst(client, keyLayout(root), { logger })) {
    if (options.task !== undefined && !entry.moves.some((move) => move.id === options.task)) continue;
    entries.push(entry);
    if (entries.length === limit) break;
  }
  return entries.reverse();
}

/** The newest readable history record at `revision` (the current one when absent). */
export async function readNewestHistory(
  client: Etcd3,
  keys: KeyLayout,
  options: { revision?: number; logger?: Logger } = {},
): Promise<HistoryEntry | undefined> {
  const logger = options.logger ?? silentLogger;
  for await (const entry of historyNewestFirst(client, keys, { ...options, logger, pageSize: 4 }))
    return entry;
  return undefined;
}

/** The revision in the newest history key (keys only, one small read), or undefined when there is none. */
export async function newestHistoryRevision(client: Etcd3, keys: KeyLayout): Promise<number | undefined> {
  for await (const kv of historyKeysNewestFirst(client, keys, { keysOnly: true, pageSize: 4 })) {
    const revision = keys.parseHistory(kv.key.toString());
    if (revision !== undefined) return revision;
  }
  return undefined;
}

/**
 * Readable history records, newest first, read in pages. Only 16-digit leaves are history (a forged
 * `/R/history/zzzz` would otherwise sort last); bad records are skipped with one warning.
 */
async function* historyNewestFirst(
  client: Etcd3,
  keys: KeyLayout,
  options: { revision?: number; logger: Logger; pageSize?: number },
): AsyncGenerator<HistoryEntry> {
  for await (const kv of historyKeysNewestFirst(client, keys, options)) {
    const key = keyText(kv.key, options.logger);
    const revision = key === undefined ? undefined : keys.parseHistory(key);
    if (key === undefined || revision === undefined) continue;
    const record = readRecord(historyRecordSchema, key, kv.value, options.logger);
    if (record) yield { ...record, revision };
  }
}

const PAGE_SIZE = 200;

/** Every key between the lowest and the highest 16-digit history key, newest first, in pages. */
async function* historyKeysNewestFirst(
  client: Etcd3,
  keys: KeyLayout,
  options: { revision?: number; keysOnly?: boolean; pageSize?: number },
): AsyncGenerator<IKeyValue> {
  const { key: lowest, range_end: highest } = keys.historyRange;
  let end = highest;
  let revision = options.revision;
  for (;;) {
    const page = await client.kv.range(
      {
        key: lowest,
        range_end: end,
        sort_target: SortTarget.Key,
        sort_order: SortOrder.Descend,
        limit: options.pageSize ?? PAGE_SIZE,
        keys_only: options.keysOnly ?? false,
        ...(revision === undefined ? {} : { revision }),
      },
      requestDeadline(),
    );
    // Later pages read at the first page's revision, so the records are one consistent history.
    revision ??= Number(page.header.revision);
    yield* page.kvs;
    if (!page.more || page.kvs.length === 0) return;
    end = (page.kvs.at(-1) as IKeyValue).key;
  }
}
