import type { Etcd3, IRequestOp } from "etcd3";
import { delay, type KeyLayout, type LeaseSession, type Logger, type TaskStatus } from "../node/index.js";
import type { StatusSink } from "./status-publisher.js";
import { unlessAborted } from "./waiting.js";

/** Most operations in one transaction (etcd's default --max-txn-ops is 128). */
const MAX_OPS = 128;
/** Transactions in flight at once: enough to pipeline, few enough to keep etcd's queue short. */
const MAX_IN_FLIGHT = 4;
const RETRY_MS = 200;

interface PendingWrite {
  key: string;
  /** Undefined: delete the key. */
  value?: string;
  done: () => void;
}

/**
 * Writes the status keys of one worker under one lease, many tasks per transaction (one etcd write
 * per task state would swamp etcd when thousands of tasks start at once). Once the lease ends,
 * pending writes are dropped: the keys die with the lease.
 */
export class StatusWriter implements StatusSink {
  private queue: PendingWrite[] = [];
  private inFlight = 0;
  private scheduled = false;

  constructor(
    private readonly client: Etcd3,
    private readonly keys: KeyLayout,
    private readonly worker: string,
    private readonly session: LeaseSession,
    private readonly logger: Logger,
  ) {
    session.signal.addEventListener("abort", () => this.dropPending(), { once: true });
  }

  put(taskId: string, status: TaskStatus): Promise<void> {
    return this.enqueue(this.keys.status(this.worker, taskId), JSON.stringify(status));
  }

  remove(taskId: string): Promise<void> {
    return this.enqueue(this.keys.status(this.worker, taskId), undefined);
  }

  private enqueue(key: string, value: string | undefined): Promise<void> {
    if (!this.session.active) return Promise.resolve();
    return new Promise((done) => {
      this.queue.push({ key, value, done });
      this.schedule();
    });
  }

  private dropPending(): void {
    const dropped = this.queue;
    this.queue = [];
    for (const write of dropped) write.done();
  }

  /** Flushes on the next turn of the event loop, so writes made together travel together. */
  private schedule(): void {
    if (this.scheduled || this.inFlight >= MAX_IN_FLIGHT || this.queue.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      while (this.queue.length > 0 && this.inFlight < MAX_IN_FLIGHT) void this.send(this.takeBatch());
    });
  }

  /** Up to MAX_OPS writes with distinct keys (etcd rejects a transaction naming a key twice). */
  private takeBatch(): PendingWrite[] {
    const batch: PendingWrite[] = [];
    const keys = new Set<string>();
    const rest: PendingWrite[] = [];
    for (const write of this.queue) {
      if (batch.length < MAX_OPS && !keys.has(write.key)) {
        keys.add(write.key);
        batch.push(write);
      } else rest.push(write);
    }
    this.queue = rest;
    return batch;
  }

  private async send(batch: PendingWrite[]): Promise<void> {
    this.inFlight++;
    let retry = false;
    try {
      if (!this.session.active) return;
      const lease = this.session.id;
      const operations: IRequestOp[] = batch.map(({ key, value }) =>
        value === undefined
          ? { request_delete_range: { key: Buffer.from(key) } }
          : { request_put: { key: Buffer.from(key), value: Buffer.from(value), lease } },
      );
      await unlessAborted(
        this.client.kv.txn({ compare: [], success: operations, failure: [] }),
        this.session.signal,
      );
    } catch (error) {
      if (!this.session.active) return;
      // A status must not stay stale while the lease lives: try again shortly.
      this.logger.warn(
        { err: error, writes: batch.length, retryInMs: RETRY_MS },
        "status write failed; retrying",
      );
      retry = await delay(RETRY_MS, this.session.signal).then(
        () => true,
        () => false,
      );
    } finally {
      this.inFlight--;
      if (retry) this.queue.unshift(...batch);
      else for (const write of batch) write.done();
      this.schedule();
    }
  }
}
