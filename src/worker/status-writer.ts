import type { Etcd3, IRequestOp } from "etcd3";
import {
  isEtcdBusy,
  type KeyLayout,
  type LeaseSession,
  type Logger,
  requestDeadline,
  type TaskStatus,
} from "../node/index.js";
import { delay, exponentialBackoff, unlessAborted } from "../runtime/index.js";
import { RunLocks } from "./run-lock.js";
import { CLAIMED, type ClaimResult, NOT_CLAIMED, type StatusSink } from "./status-publisher.js";

/** Most operations in one transaction (etcd's default --max-txn-ops is 128). */
export const MAX_TXN_OPS = 128;
/** Most bytes of keys and values in one transaction (etcd's default request limit is 1.5 MiB). */
const MAX_BYTES = 1024 * 1024;
/**
 * How long a write waits for others to share its transaction: the claims and statuses of tasks that
 * arrive over a few watch events travel together. A full batch goes at once.
 */
export const STATUS_LINGER_MS = 20;
/** Transactions in flight at once: enough to pipeline, few enough to keep etcd's queue short. */
const MAX_IN_FLIGHT = 4;

interface PendingWrite {
  taskId: string;
  /** The status key. */
  key: string;
  /** Undefined: delete the key (and release the task's run lock). */
  value?: string;
  /** A start claim: written only while the task key still has this mod revision, with the run lock. */
  guard?: { key: string; modRevision: number };
  /** Called once with the outcome (a plain write: claimed when applied). */
  done: (result: ClaimResult) => void;
  /** Key, value and guard bytes, plus the framing of its operations. */
  bytes: number;
  /** Operations in the transaction: a claim and a deletion carry the run lock's too. */
  ops: number;
}

/**
 * Writes the status keys of one worker under one lease, many tasks per transaction (one etcd write
 * per task state would swamp etcd when thousands of tasks start at once). Once the lease ends,
 * pending writes are dropped: the keys die with the lease.
 */
export class StatusWriter implements StatusSink {
  private queue: PendingWrite[] = [];
  private inFlight = 0;
  /** Aborted when the lease ends or `close()` is called: nothing more is written, nothing waits. */
  private readonly closed = new AbortController();
  private queuedBytes = 0;
  private queuedOps = 0;
  private readonly locks: RunLocks;
  private linger?: NodeJS.Timeout;
  private flushScheduled = false;
  /** Pause before sending a failed batch again; grows while etcd keeps failing or pushing back. */
  private readonly retry = exponentialBackoff({ initialMs: 200, maxMs: 5_000 });

  constructor(
    private readonly client: Etcd3,
    private readonly keys: KeyLayout,
    private readonly worker: string,
    private readonly session: LeaseSession,
    private readonly logger: Logger,
    private readonly lingerMs = STATUS_LINGER_MS,
  ) {
    this.locks = new RunLocks(client, keys, worker, session.id);
    session.signal.addEventListener("abort", () => this.close(), { once: true });
  }

  put(taskId: string, status: TaskStatus): Promise<void> {
    return this.enqueue(taskId, JSON.stringify(status)).then(() => undefined);
  }

  remove(taskId: string): Promise<void> {
    return this.enqueue(taskId, undefined).then(() => undefined);
  }

  claim(taskId: string, status: TaskStatus, taskRevision: number): Promise<ClaimResult> {
    const guard = { key: this.keys.task(this.worker, taskId), modRevision: taskRevision };
    return this.enqueue(taskId, JSON.stringify(status), guard);
  }

  private enqueue(
    taskId: string,
    value: string | undefined,
    guard?: PendingWrite["guard"],
  ): Promise<ClaimResult> {
    if (this.closed.signal.aborted) return Promise.resolve(NOT_CLAIMED);
    const key = this.keys.status(this.worker, taskId);
    const withLock = guard !== undefined || value === undefined;
    const lockBytes = withLock
      ? this.keys.runLocksPrefix.length + taskId.length + this.worker.length + 32
      : 0;
    const bytes = key.length + (value?.length ?? 0) + (guard ? guard.key.length + 16 : 0) + lockBytes + 32;
    const ops = withLock ? 2 : 1;
    return new Promise((done) => {
      this.queue.push({ taskId, key, value, guard, done, bytes, ops });
      this.queuedBytes += bytes;
      this.queuedOps += ops;
      this.schedule();
    });
  }

  /**
   * Stops writing: queued writes are dropped and writes in flight stop being waited for (each
   * resolves as not applied). What the lease already holds stays. Idempotent.
   */
  close(): void {
    this.closed.abort();
    this.dropPending();
  }

  private dropPending(): void {
    const dropped = this.queue;
    this.queue = [];
    this.queuedBytes = 0;
    this.queuedOps = 0;
    clearTimeout(this.linger);
    for (const write of dropped) write.done(NOT_CLAIMED);
  }

  /**
   * Sends once a transaction's worth is queued, or after the linger otherwise, so writes made over a
   * few milliseconds travel together (bounded by MAX_TXN_OPS and MAX_BYTES per transaction).
   */
  private schedule(): void {
    if (this.inFlight >= MAX_IN_FLIGHT || this.queue.length === 0) return;
    if (this.batchFull()) {
      if (this.flushScheduled) return;
      this.flushScheduled = true;
      setImmediate(() => this.flush(false));
    } else {
      this.linger ??= setTimeout(() => this.flush(true), this.lingerMs);
    }
  }

  private batchFull(): boolean {
    return this.queuedOps >= MAX_TXN_OPS || this.queuedBytes >= MAX_BYTES;
  }

  /** Sends full batches; once the linger is over, the rest too. */
  private flush(lingered: boolean): void {
    if (lingered) this.linger = undefined;
    else this.flushScheduled = false;
    while (this.queue.length > 0 && this.inFlight < MAX_IN_FLIGHT && (lingered || this.batchFull()))
      void this.send(this.takeBatch());
    if (this.queue.length === 0) {
      clearTimeout(this.linger);
      this.linger = undefined;
    } else this.schedule();
  }

  /**
   * Up to MAX_TXN_OPS operations and MAX_BYTES with distinct keys (etcd rejects a transaction
   * naming a key twice); scans only as far as it takes. A run lock's release is a nested transaction,
   * which etcd counts on top of the outer ones: a batch with one keeps one operation spare.
   */
  private takeBatch(): PendingWrite[] {
    const batch: PendingWrite[] = [];
    const keys = new Set<string>();
    const later: PendingWrite[] = [];
    let scanned = 0;
    let bytes = 0;
    let ops = 0;
    let spare = 0;
    while (scanned < this.queue.length) {
      const write = this.queue[scanned] as PendingWrite;
      const needs = write.value === undefined ? 1 : spare;
      if (batch.length > 0 && (bytes + write.bytes > MAX_BYTES || ops + write.ops + needs > MAX_TXN_OPS))
        break;
      scanned++;
      if (keys.has(write.key)) later.push(write);
      else {
        keys.add(write.key);
        batch.push(write);
        bytes += write.bytes;
        ops += write.ops;
        spare = needs;
      }
    }
    this.queue.splice(0, scanned, ...later);
    this.queuedBytes -= bytes;
    this.queuedOps -= ops;
    return batch;
  }

  private async send(batch: PendingWrite[]): Promise<void> {
    this.inFlight++;
    let retry = false;
    let applied = false;
    try {
      if (this.closed.signal.aborted) return;
      // A refused claim drops out and the rest is sent again: another round trip only when a task
      // key changed or a run lock was not as believed.
      for (let refused = await this.commit(batch); refused; refused = await this.commit(batch)) {
        for (const [write, result] of refused) write.done(result);
        batch = batch.filter((write) => !refused.has(write));
      }
      applied = true;
      this.retry.reset();
    } catch (error) {
      if (this.closed.signal.aborted) return;
      // A status must not stay stale while the lease lives: try again, later each time etcd refuses.
      const wait = this.retry.next();
      this.logger[isEtcdBusy(error) ? "debug" : "warn"](
        { err: error, writes: batch.length, retryInMs: wait },
        "status write failed; retrying",
      );
      retry = await delay(wait, this.closed.signal).then(
        () => true,
        () => false,
      );
    } finally {
      this.inFlight--;
      if (retry) {
        this.queue.unshift(...batch);
        for (const write of batch) {
          this.queuedBytes += write.bytes;
          this.queuedOps += write.ops;
        }
      } else for (const write of batch) write.done(applied ? CLAIMED : NOT_CLAIMED);
      this.schedule();
    }
  }

  /**
   * One transaction: every write of the batch, if every claimed task key is still as seen and every
   * claimed run lock free or already this lease's. Undefined when applied; otherwise the claims
   * refused, read in the same round trip (empty when only a belief about a lock was corrected).
   */
  private async commit(batch: PendingWrite[]): Promise<Map<PendingWrite, ClaimResult> | undefined> {
    if (batch.length === 0) return undefined;
    const lease = this.session.id;
    const { locks } = this;
    const claims = batch.filter((write) => write.guard !== undefined);
    const guardOf = (write: PendingWrite) => write.guard as { key: string; modRevision: number };
    const operations: IRequestOp[] = batch.flatMap(({ taskId, key, value, guard }): IRequestOp[] => {
      if (value === undefined)
        return [{ request_delete_range: { key: Buffer.from(key) } }, locks.release(taskId)];
      const put: IRequestOp = { request_put: { key: Buffer.from(key), value: Buffer.from(value), lease } };
      return guard ? [put, locks.take(taskId)] : [put];
    });
    const response = await unlessAborted(
      this.client.kv.txn(
        {
          compare: claims.flatMap((write) => [
            {
              key: Buffer.from(guardOf(write).key),
              target: "Mod" as const,
              result: "Equal" as const,
              mod_revision: guardOf(write).modRevision,
            },
            locks.compare(write.taskId),
          ]),
          success: operations,
          failure: claims.flatMap((write) => [
            { request_range: { key: Buffer.from(guardOf(write).key), keys_only: true } },
            locks.read(write.taskId),
          ]),
        },
        requestDeadline(),
      ),
      this.closed.signal,
    );
    if (response.succeeded) {
      for (const write of batch) {
        if (write.guard) locks.taken(write.taskId);
        else if (write.value === undefined) locks.released(write.taskId);
      }
      return undefined;
    }
    const revision = Number(response.header.revision);
    const refused = new Map<PendingWrite, ClaimResult>();
    let corrected = false;
    claims.forEach((write, i) => {
      const taskKey = response.responses[2 * i]?.response_range?.kvs[0];
      if (Number(taskKey?.mod_revision ?? 0) !== guardOf(write).modRevision) {
        refused.set(write, NOT_CLAIMED);
        return;
      }
      const judged = locks.judge(
        write.taskId,
        response.responses[2 * i + 1]?.response_range?.kvs[0],
        revision,
      );
      if (judged) refused.set(write, judged);
      else corrected = true;
    });
    if (refused.size === 0 && !corrected)
      throw new Error("status transaction refused, yet every claim holds");
    return refused;
  }
}
