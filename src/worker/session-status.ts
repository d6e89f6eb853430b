import type { Etcd3, IRequestOp } from "etcd3";
import {
  type KeyLayout,
  type LeaseSession,
  type Logger,
  MAX_TXN_OPS,
  readPrefixPaged,
  requestDeadline,
  type TaskStatus,
} from "../node/index.js";
import { LockAudit, type LockAuditOptions } from "./lock-audit.js";
import { type ClaimResult, NOT_CLAIMED, type StatusSink } from "./status-publisher.js";
import { StatusWriter } from "./status-writer.js";
import { NESTED_OPS, RunLocks } from "./run-lock.js";

/**
 * A session's status keys, through a `StatusWriter` under its lease, that a suspended lease can cut
 * off: while keep-alives are overdue nothing waits on etcd (the stops of a fence must not), writes
 * are skipped; a resumption sets the keys straight before the tasks start again.
 */
export class SessionStatus implements StatusSink {
  private writer?: StatusWriter;
  /** Until the writes a suspension stopped waiting for have been answered by etcd. */
  private closedWrites: Promise<void> = Promise.resolve();

  private readonly client: Etcd3;
  private readonly keys: KeyLayout;
  private readonly worker: string;
  private readonly lease: LeaseSession;
  private readonly logger: Logger;

  constructor(session: {
    client: Etcd3;
    keys: KeyLayout;
    name: string;
    lease: LeaseSession;
    logger: Logger;
  }) {
    ({
      client: this.client,
      keys: this.keys,
      name: this.worker,
      lease: this.lease,
      logger: this.logger,
    } = session);
    this.writer = this.newWriter();
  }

  put(taskId: string, status: TaskStatus): Promise<void> {
    return this.writer?.put(taskId, status) ?? Promise.resolve();
  }

  remove(taskId: string): Promise<void> {
    return this.writer?.remove(taskId) ?? Promise.resolve();
  }

  claim(taskId: string, status: TaskStatus, taskRevision: number): Promise<ClaimResult> {
    return this.writer?.claim(taskId, status, taskRevision) ?? Promise.resolve(NOT_CLAIMED);
  }

  /** Stops writing and waiting until `resume()`: queued and in-flight writes resolve at once. */
  suspend(): void {
    this.writer?.close();
    if (this.writer) this.closedWrites = this.writer.settled();
    this.writer = undefined;
  }

  /**
   * Writes again, after deleting the status keys (and run locks) of tasks that are no longer busy
   * here (`busy` says which still run or stop): their last writes were skipped while suspended. Waits
   * first for the writes in flight at the suspension: one landing after the cleanup would stay.
   */
  async resume(busy: (taskId: string) => boolean): Promise<void> {
    await this.closedWrites;
    const prefix = this.keys.workerStatusPrefix(this.worker);
    const locks = new RunLocks(this.client, this.keys, this.worker, this.lease.id, this.logger);
    try {
      const stored = await readPrefixPaged(this.client, prefix, { keysOnly: true });
      const stale = stored.kvs.filter((kv) => !busy(kv.key.toString().slice(prefix.length)));
      // Each a nested transaction (the status, and the run lock if this lease holds it).
      const perTxn = MAX_TXN_OPS - NESTED_OPS;
      for (let i = 0; i < stale.length; i += perTxn) {
        const success = stale.slice(i, i + perTxn).map((kv): IRequestOp => {
          const taskId = this.keys.parseStatus(kv.key.toString())?.taskId;
          return taskId === undefined
            ? { request_delete_range: { key: kv.key } }
            : locks.remove(taskId, kv.key);
        });
        await this.client.kv.txn({ compare: [], success, failure: [] }, requestDeadline());
      }
    } catch (error) {
      // The tasks' own writes (claims first) set their keys straight; only stale ones may linger.
      this.logger.warn({ err: error }, "could not clear the statuses left from before the suspension");
    }
    if (!this.lease.active) return;
    this.writer = this.newWriter();
    // The statuses kept are those of tasks still busy here, written by the writer before.
    this.writer.adopt(busy);
  }

  /**
   * Audits the run locks under the lease every half TTL until `signal` aborts (see `LockAudit`):
   * a lock deleted or forged by hand misleads no worker for longer than that and a round trip.
   */
  auditLocks(signal: AbortSignal, lost: LockAuditOptions["lost"]): Promise<void> {
    const { client, keys, lease, logger } = this;
    const intervalMs = Math.max(100, Math.floor(lease.ttlMs / 2));
    return new LockAudit({
      client,
      keys,
      lease,
      logger,
      intervalMs,
      locks: () => this.writer?.runLocks,
      reports: (key) => this.writer?.reports(key) ?? true,
      lost,
    }).run(signal);
  }

  private newWriter(): StatusWriter {
    return new StatusWriter(this.client, this.keys, this.worker, this.lease, this.logger);
  }
}
