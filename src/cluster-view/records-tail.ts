/**
 * The schedule history and the operator's audit trail as the console shows them, held in memory: every
 * record under `/R/history/` and `/R/audit/` is parsed once, when it arrives (both are bounded to 1,000
 * records by their writers), so a snapshot reads no etcd for them.
 */
import {
  auditRecordSchema,
  historyRecordSchema,
  type KeyLayout,
  keyText,
  type Logger,
  readRecord,
} from "../node/index.js";
import type { AuditEntry, HistoryEntry } from "../operator/index.js";

export class RecordsTail {
  /** Revision in the key → the readable history record (a bad one is not held: every reader skips it). */
  private readonly history = new Map<number, HistoryEntry>();
  /** Audit key (latin1, so it sorts as etcd sorts bytes) → its entry, or undefined when unreadable. */
  private readonly audits = new Map<string, AuditEntry | undefined>();
  private historyNewestFirst?: HistoryEntry[];
  private auditKeysNewestFirst?: string[];

  constructor(
    private readonly keys: KeyLayout,
    private readonly logger: Logger,
  ) {}

  /** True when `key` (as etcd's bytes) is a history or audit key; `value` undefined for a delete. */
  take(key: Buffer, value: Buffer | undefined): boolean {
    const bytes = key.toString("latin1");
    if (bytes.startsWith(this.keys.historyPrefix)) {
      // Only 16-digit leaves are history (historyNewestFirst); others are skipped, as there.
      const text = keyText(key, this.logger);
      const revision = text === undefined ? undefined : this.keys.parseHistory(text);
      if (text === undefined || revision === undefined) return true;
      const record = value && readRecord(historyRecordSchema, text, value, this.logger);
      if (record) this.history.set(revision, { ...record, revision });
      else this.history.delete(revision);
      this.historyNewestFirst = undefined;
      return true;
    }
    if (bytes.startsWith(this.keys.auditPrefix)) {
      // The order changes only when a key comes or goes.
      if (this.audits.has(bytes) !== (value !== undefined)) this.auditKeysNewestFirst = undefined;
      if (value) this.audits.set(bytes, this.auditOf(key, value));
      else this.audits.delete(bytes);
      return true;
    }
    return false;
  }

  clear(): void {
    this.history.clear();
    this.audits.clear();
    this.historyNewestFirst = undefined;
    this.auditKeysNewestFirst = undefined;
  }

  /** The newest readable schedule record (`readNewestHistory`). */
  newestSchedule(): HistoryEntry | undefined {
    return this.sortedHistory()[0];
  }

  /** The newest `limit` readable schedule records, oldest first (`readHistory`). */
  schedules(limit: number): HistoryEntry[] {
    return this.sortedHistory().slice(0, limit).reverse();
  }

  /** The readable records among the newest `limit` audit keys, oldest first (`readAudit` with a limit). */
  actions(limit: number): AuditEntry[] {
    this.auditKeysNewestFirst ??= [...this.audits.keys()].sort(byCodeUnit).reverse();
    return this.auditKeysNewestFirst
      .slice(0, limit)
      .flatMap((key) => this.audits.get(key) ?? [])
      .reverse();
  }

  private sortedHistory(): HistoryEntry[] {
    this.historyNewestFirst ??= [...this.history.values()].sort((a, b) => b.revision - a.revision);
    return this.historyNewestFirst;
  }

  private auditOf(key: Buffer, value: Buffer): AuditEntry | undefined {
    const text = keyText(key, this.logger);
    const atMs = text === undefined ? undefined : this.keys.parseAudit(text);
    if (text === undefined || atMs === undefined) return undefined;
    const record = readRecord(auditRecordSchema, text, value, this.logger);
    return record && { ...record, atMs };
  }
}

export function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
