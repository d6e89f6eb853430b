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
import type { StatusSink } from "./status-publisher.js";

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
  key: string;
  /** Undefined: delete the key. */
  value?: string;
  /** Write only while this key still has this mod revision (a claim on the task key). */
  guard?: { key: string; modRevision: number };
  /** Called once with whether the write was applied. */
  done: (applied: boolean) => void;
  /** Key, value and guard bytes, plus the framing of its operations. */
  bytes: number;
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
    session.signal.addEventListener("abort", () => this.close(), { once: true });
  }

  put(taskId: string, status: TaskStatus): Promise<void> {
    return this.enqueue(this.keys.status(this.worker, taskId), JSON.stringify(status)).then(() => undefined);
  }

  remove(taskId: string): Promise<void> {
    return this.enqueue(this.keys.status(this.worker, taskId), undefined).then(() => undefined);
  }

  claim(taskId: string, status: TaskStatus, taskRevision: number): Promise<boolean> {
    const guard = { key: this.keys.task(this.worker, taskId), modRevision: taskRevision };
    return this.enqueue(this.keys.status(this.worker, taskId), JSON.stringify(status), guard);
  }

  private enqueue(key: string, value: string | undefined, guard?: PendingWrite["guard"]): Promise<boolean> {
    if (this.closed.signal.aborted) return Promise.resolve(false);
    const bytes = key.length + (value?.length ?? 0) + (guard ? guard.key.length + 16 : 0) + 32;
    return new Promise((done) => {
      this.queue.push({ key, value, guard, done, bytes });
      this.queuedBytes += bytes;
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
    clearTimeout(this.linger);
    for (const write of dropped) write.done(false);
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
    return this.queue.length >= MAX_TXN_OPS || this.queuedBytes >= MAX_BYTES;
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
   * Up to MAX_TXN_OPS writes and MAX_BYTES with distinct keys (etcd rejects a transaction naming a key
   * twice); scans only as far as it takes.
   */
  private takeBatch(): PendingWrite[] {
    const batch: PendingWrite[] = [];
    const keys = new Set<string>();
    const later: PendingWrite[] = [];
    let scanned = 0;
    let bytes = 0;
    while (scanned < this.queue.length && batch.length < MAX_TXN_OPS) {
      const write = this.queue[scanned] as PendingWrite;
      if (batch.length > 0 && bytes + write.bytes > MAX_BYTES) break;
      scanned++;
      if (keys.has(write.key)) later.push(write);
      else {
        keys.add(write.key);
        batch.push(write);
        bytes += write.bytes;
      }
    }
    this.queue.splice(0, scanned, ...later);
    this.queuedBytes -= bytes;
    return batch;
  }

  private async send(batch: PendingWrite[]): Promise<void> {
    this.inFlight++;
    let retry = false;
    let applied = false;
    try {
      if (this.closed.signal.aborted) return;
      // A refused claim drops out and the rest is sent again: another round trip only when a task key changed.
      for (let refused = await this.commit(batch); refused.size > 0; refused = await this.commit(batch)) {
        for (const write of refused) write.done(false);
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
        for (const write of batch) this.queuedBytes += write.bytes;
      } else for (const write of batch) write.done(applied);
      this.schedule();
    }
  }

  /**
   * One transaction: every write of the batch, if every claimed task key is still as seen. Returns
   * the writes whose claim no longer holds (empty when applied), read in the same round trip.
   */
  private async commit(batch: PendingWrite[]): Promise<Set<PendingWrite>> {
    if (batch.length === 0) return new Set();
    const lease = this.session.id;
    const guarded = batch.filter((write) => write.guard !== undefined);
    const guardKey = (write: PendingWrite) => Buffer.from((write.guard as { key: string }).key);
    const operations: IRequestOp[] = batch.map(({ key, value }) =>
      value === undefined
        ? { request_delete_range: { key: Buffer.from(key) } }
        : { request_put: { key: Buffer.from(key), value: Buffer.from(value), lease } },
    );
    const response = await unlessAborted(
      this.client.kv.txn(
        {
          compare: guarded.map((write) => ({
            key: guardKey(write),
            target: "Mod" as const,
            result: "Equal" as const,
            mod_revision: write.guard?.modRevision,
          })),
          success: operations,
          failure: guarded.map((write) => ({ request_range: { key: guardKey(write), keys_only: true } })),
        },
        requestDeadline(),
      ),
      this.closed.signal,
    );
    if (response.succeeded) return new Set();
    return new Set(
      guarded.filter((write, i) => {
        const current = response.responses[i]?.response_range?.kvs[0]?.mod_revision;
        return Number(current ?? 0) !== write.guard?.modRevision;
      }),
    );
  }
}
