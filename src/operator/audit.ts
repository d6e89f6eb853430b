/** The audit trail: every operator action writes one record under `/R/audit/` in the transaction that does it. */
import { randomBytes } from "node:crypto";
import { hostname, userInfo } from "node:os";
import { type Etcd3, type IRequestOp, SortOrder, SortTarget } from "etcd3";
import {
  type AuditRecord,
  auditRecordSchema,
  type KeyLayout,
  keyText,
  type Logger,
  prefixRange,
  readRecord,
  requestDeadline,
  silentLogger,
} from "../node/index.js";

/** Audit records kept; older ones are deleted by the action that adds one. */
export const AUDIT_LIMIT = 1_000;
const MAX_TRIM_PER_WRITE = 64;

/** Who acts when nobody said (`--as`): the local user at this host. */
export function defaultActor(): string {
  let user = process.env.USER ?? "unknown";
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry (a container's random uid): the environment's name will do.
  }
  return `${user}@${hostname()}`;
}

/** Who and why of one action, as the options of every operator function take them. */
export interface ActorOptions {
  /** Who does it (default user@host). */
  by?: string;
  /** Why, shown in status, the console and the history. */
  reason?: string;
}

/** `{by, reason?}` for a record: `by` defaulted, an empty reason left out. */
export function actorOf(options: ActorOptions): { by: string; reason?: string } {
  const by = options.by?.trim() || defaultActor();
  const reason = options.reason?.trim();
  return reason ? { by, reason } : { by };
}

/**
 * The operations that add `record` to the audit trail and trim the oldest beyond AUDIT_LIMIT (one
 * keys-only read); the caller sends them in the transaction of the action itself.
 */
export async function auditOps(
  client: Etcd3,
  keys: KeyLayout,
  record: AuditRecord,
  limit = AUDIT_LIMIT,
): Promise<IRequestOp[]> {
  const key = keys.audit(Date.parse(record.at) || Date.now(), randomBytes(4).toString("hex"));
  const stored = await client.kv.range(
    prefixRange(keys.auditPrefix, {
      keys_only: true,
      sort_target: SortTarget.Key,
      sort_order: SortOrder.Ascend,
    }),
    requestDeadline(),
  );
  const older = stored.kvs.map((kv) => kv.key).filter((k) => keys.parseAudit(k.toString()) !== undefined);
  const excess = Math.min(MAX_TRIM_PER_WRITE, Math.max(0, older.length + 1 - limit));
  return [
    ...older.slice(0, excess).map((stale): IRequestOp => ({ request_delete_range: { key: stale } })),
    { request_put: { key: Buffer.from(key), value: Buffer.from(JSON.stringify(record)) } },
  ];
}

/** Adds one record to the audit trail on its own (for an action whose write is a transaction of its own). */
export async function writeAudit(client: Etcd3, keys: KeyLayout, record: AuditRecord): Promise<void> {
  await client.kv.txn(
    { compare: [], success: await auditOps(client, keys, record), failure: [] },
    requestDeadline(),
  );
}

export interface AuditEntry extends AuditRecord {
  /** Time of the key, ms since the epoch. */
  atMs: number;
}

/** The newest `limit` audit records, oldest first; bad records are skipped with one warning. */
export async function readAudit(
  client: Etcd3,
  keys: KeyLayout,
  options: { limit?: number; task?: string; worker?: string; logger?: Logger } = {},
): Promise<AuditEntry[]> {
  const logger = options.logger ?? silentLogger;
  // Unfiltered, the newest `limit` keys are all it needs (the console reads them on every change).
  const unfiltered = options.task === undefined && options.worker === undefined;
  const limit = unfiltered && options.limit !== undefined ? { limit: options.limit } : {};
  const response = await client.kv.range(
    prefixRange(keys.auditPrefix, { sort_target: SortTarget.Key, sort_order: SortOrder.Descend, ...limit }),
    requestDeadline(),
  );
  const entries: AuditEntry[] = [];
  for (const kv of response.kvs) {
    const key = keyText(kv.key, logger);
    const atMs = key === undefined ? undefined : keys.parseAudit(key);
    if (key === undefined || atMs === undefined) continue;
    const record = readRecord(auditRecordSchema, key, kv.value, logger);
    if (!record) continue;
    if (options.task !== undefined && record.task !== options.task) continue;
    if (options.worker !== undefined && record.worker !== options.worker && record.to !== options.worker)
      continue;
    entries.push({ ...record, atMs });
    if (options.limit !== undefined && entries.length >= options.limit) break;
  }
  return entries.reverse();
}

/** "alice@ops: incident 4711" (or just "alice@ops"); undefined when neither is known (an older record). */
export function actorText(record: { by?: string; reason?: string }): string | undefined {
  if (record.by && record.reason) return `${record.by}: ${record.reason}`;
  return record.by ?? record.reason;
}
