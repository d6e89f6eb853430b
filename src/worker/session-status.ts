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
  /** Counts suspensions: a resumption that began before the latest one must not write again. */
  private suspensions = 0;
  /** Until the resumption under way has finished: one clean-up at a time, in order. */
  private resuming: Promise<unknown> = Promise.resolve();

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

  put(taskId: string, status: TaskStatus): Promise<unknown> {
    return this.writer?.put(taskId, status) ?? Promise.resolve();
  }

  remove(taskId: string): Promise<unknown> {
    return this.writer?.remove(taskId) ?? Promise.resolve();
  }

  claim(taskId: string, status: TaskStatus, taskRevision: number): Promise<ClaimResult> {
    return this.writer?.claim(taskId, status, taskRevision) ?? Promise.resolve(NOT_CLAIMED);
  }

  /** Stops writing and waiting until `resume()`: queued and in-flight writes resolve at once. */
  suspend(): void {
    this.suspensions += 1;
    this.writer?.close();
    if (this.writer) this.closedWrites = this.writer.settled();
    this.writer = undefined;
  }

  /**
   * Writes again, after deleting the status keys (and run locks) of tasks that are no longer busy
   * here (`busy` says which still run or stop): their last writes were skipped while suspended. Waits
   * first for the writes in flight at the suspension (one landing after the cleanup would stay) and
   * for an earlier resumption's clean-up. Resolves true when writing again; false when suspended again
   * meanwhile (a lease that flaps resumes many times: only the latest resumption may write, or a
   * superseded one would replace the writer whose claims the tasks hold) or when the lease ended.
   */
  resume(busy: (taskId: string) => boolean): Promise<boolean> {
    const suspensions = this.suspensions;
    const resumed = this.resuming.then(async () => {
      if (suspensions !== this.suspensions) return false;
      await this.closedWrites;
      await this.clearStale(busy);
      if (suspensions !== this.suspensions || !this.lease.active) return false;
      this.writer = this.newWriter();
      // The statuses kept are those of tasks still busy here, written by the writer before.
      this.writer.adopt(busy);
      return true;
    });
    this.resuming = resumed;
    return resumed;
  }

  /**
   * Deletes the status keys of tasks not busy here, each only as it was read: a key written again
   * since (a task claimed after a later resumption) is left, so a clean-up that etcd answers late
   * never deletes a running task's status or its run lock.
   */
  private async clearStale(busy: (taskId: string) => boolean): Promise<void> {
    const prefix = this.keys.workerStatusPrefix(this.worker);
    const locks = new RunLocks(this.client, this.keys, this.worker, this.lease.id, this.logger);
    try {
      const stored = await readPrefixPaged(this.client, prefix, { keysOnly: true });
      const stale = stored.kvs.filter((kv) => !busy(kv.key.toString().slice(prefix.length)));
      // Each two nested levels (the status as read; then it and the run lock if this lease holds it):
      // etcd allows a nested level the operations its parent leaves.
      const perTxn = MAX_TXN_OPS - NESTED_OPS - 1;
      for (let i = 0; i < stale.length; i += perTxn) {
        const success = stale.slice(i, i + perTxn).map((kv): IRequestOp => {
          const taskId = this.keys.parseStatus(kv.key.toString())?.taskId;
          const remove: IRequestOp =
            taskId === undefined ? { request_delete_range: { key: kv.key } } : locks.remove(taskId, kv.key);
          const asRead = {
            key: kv.key,
            target: "Mod" as const,
            result: "Equal" as const,
            mod_revision: kv.mod_revision,
          };
          return { request_txn: { compare: [asRead], success: [remove], failure: [] } };
        });
        await this.client.kv.txn({ compare: [], success, failure: [] }, requestDeadline());
      }
    } catch (error) {
      // The tasks' own writes (claims first) set their keys straight; only stale ones may linger.
      this.logger.warn({ err: error }, "could not clear the statuses left from before the suspension");
    }
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
      // At a random phase: a fleet's workers register together, and their audits in step would reach
      // etcd's lessor in bursts, beside the keep-alives it must answer in time.
      firstDelayMs: Math.floor(Math.random() * intervalMs),
      locks: () => this.writer?.runLocks,
      reports: (key) => this.writer?.reports(key) ?? true,
      lost,
    }).run(signal);
  }

  private newWriter(): StatusWriter {
    return new StatusWriter(this.client, this.keys, this.worker, this.lease, this.logger);
  }
}
