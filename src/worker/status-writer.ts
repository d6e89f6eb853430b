import type { Etcd3, IRequestOp } from "etcd3";
import {
  isEtcdBusy,
  type KeyLayout,
  type LeaseSession,
  type Logger,
  MAX_TXN_BYTES,
  MAX_TXN_OPS,
  requestDeadline,
  type TaskStatus,
} from "../node/index.js";
import { delay, exponentialBackoff, unlessAborted } from "../runtime/index.js";
import { AGAIN, NESTED_OPS, RunLocks, type SeenLock } from "./run-lock.js";
import { CLAIMED, type ClaimResult, NOT_CLAIMED, type StatusSink } from "./status-publisher.js";

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
  /** Resolves the caller's promise with the outcome (a plain write: claimed when applied); see `done`. */
  resolve: (result: ClaimResult) => void;
  /** Key, value and guard bytes, plus the framing of its operations. */
  bytes: number;
  /** A claim or a deletion: a nested transaction that carries the task's run lock too. */
  nested: boolean;
}

/**
 * Writes the status keys of one worker under one lease, many tasks per transaction (one etcd write
 * per task state would swamp etcd when thousands of tasks start at once), by group commit, with no
 * timer: a write goes out on the next turn of the event loop (with whatever else that turn queued)
 * when no transaction is in flight, and otherwise waits for the one in flight, to travel with the
 * others queued meanwhile. A start claim is on the path to the handler: it goes as soon as the
 * callback that made it returns (a microtask: the claims of one watch response still travel
 * together), not a turn later behind whatever I/O that turn holds, and it waits only behind a
 * transaction carrying claims, never behind plain status writes. A deletion (a stop: the master
 * waits for it to hand the task over) goes as soon too, waiting only behind a transaction carrying
 * deletions. Full batches go at once, up to MAX_IN_FLIGHT. Once the lease ends, pending writes are
 * dropped: the keys die with the lease.
 *
 * Order: a task's writes reach etcd in the order it made them because its `StatusPublisher` hands
 * over the next one only once the previous is answered (so no two transactions in flight write one
 * key, whatever goes without waiting: claims, deletions, full batches), and a batch never names a key
 * twice; so batching never reorders one task's claim and the deletion that stops it. Writes of different tasks
 * may commit in any order: each claim's own compares (task key revision, run lock) decide it.
 */
export class StatusWriter implements StatusSink {
  private queue: PendingWrite[] = [];
  private inFlight = 0;
  /** Aborted when the lease ends or `close()` is called: nothing more is written, nothing waits. */
  private readonly closing = new AbortController();
  /** Read on every write: Node's `signal` getter is not free. */
  private readonly closed = this.closing.signal;
  private queuedBytes = 0;
  /** Claims / deletions in the queue, and transactions in flight that carry claims / deletions. */
  private queuedClaims = 0;
  private claimsInFlight = 0;
  private queuedDeletions = 0;
  private deletionsInFlight = 0;
  private readonly locks: RunLocks;
  /** A flush is due on the next turn (plain writes) / at the end of the current callback (claims, deletions). */
  private flushNextTurn = false;
  private flushSoon = false;
  /** Pause before sending a failed batch again; grows while etcd keeps failing or pushing back. */
  private readonly retry = exponentialBackoff({ initialMs: 200, maxMs: 5_000 });
  /** Transactions sent and not yet answered, even those `close()` stopped waiting for. */
  private readonly sent = new Set<Promise<unknown>>();
  /** Status key → writes of it queued or in flight. */
  private readonly writing = new Map<string, number>();
  /** Status keys this writer's last applied write of each left in etcd. */
  private readonly stored = new Set<string>();
  /** After a resumption: the tasks whose statuses, written by the writer before, count as this one's. */
  private adopted?: (taskId: string) => boolean;
  private readonly lockPrefixLength: number;

  constructor(
    private readonly client: Etcd3,
    private readonly keys: KeyLayout,
    private readonly worker: string,
    private readonly session: LeaseSession,
    private readonly logger: Logger,
  ) {
    this.locks = new RunLocks(client, keys, worker, session.id, logger);
    this.lockPrefixLength = keys.runLocksPrefix.length;
    session.signal.addEventListener("abort", () => this.close(), { once: true });
  }

  /** The run locks this writer's claims take (what the lock audit checks against the lease). */
  get runLocks(): RunLocks {
    return this.locks;
  }

  /**
   * Whether `key` may be a status this writer wrote: a write of it is queued or in flight, or the
   * last one applied left it in etcd. A status key under the lease for which this is false was not
   * written by this worker (the lock audit deletes it).
   */
  reports(key: string): boolean {
    if (this.writing.has(key) || this.stored.has(key)) return true;
    const parts = this.adopted && this.keys.parseStatus(key);
    return !!parts && parts.worker === this.worker && !!this.adopted?.(parts.taskId);
  }

  /** Counts the status of each task `busy` says still runs or stops here as written by this writer (at a resumption). */
  adopt(busy: (taskId: string) => boolean): void {
    this.adopted = busy;
  }

  put(taskId: string, status: TaskStatus): Promise<unknown> {
    return this.enqueue(taskId, JSON.stringify(status));
  }

  remove(taskId: string): Promise<unknown> {
    return this.enqueue(taskId, undefined);
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
    if (this.closed.aborted) return Promise.resolve(NOT_CLAIMED);
    const key = this.keys.status(this.worker, taskId);
    const nested = guard !== undefined || value === undefined;
    const lockBytes = nested ? 2 * (this.lockPrefixLength + taskId.length) + this.worker.length : 0;
    const bytes = key.length + (value?.length ?? 0) + (guard ? 2 * guard.key.length : 0) + lockBytes + 96;
    this.writing.set(key, (this.writing.get(key) ?? 0) + 1);
    let resolve!: (result: ClaimResult) => void;
    const outcome = new Promise<ClaimResult>((settle) => (resolve = settle));
    this.queue.push({ taskId, key, value, guard, resolve, bytes, nested });
    this.queuedBytes += bytes;
    if (guard) this.queuedClaims++;
    else if (value === undefined) this.queuedDeletions++;
    this.schedule();
    return outcome;
  }

  /** A write ended, applied (`claimed`) or not: its key's bookkeeping, then its caller is told. Once per write. */
  private done(write: PendingWrite, result: ClaimResult): void {
    const { key } = write;
    const left = (this.writing.get(key) ?? 1) - 1;
    if (left > 0) this.writing.set(key, left);
    else this.writing.delete(key);
    if (result.claimed) {
      if (write.value === undefined) this.stored.delete(key);
      else this.stored.add(key);
    }
    write.resolve(result);
  }

  /**
   * Stops writing: queued writes are dropped and writes in flight stop being waited for (each
   * resolves as not applied). What the lease already holds stays. Idempotent.
   */
  close(): void {
    this.closing.abort();
    this.dropPending();
  }

  /**
   * Resolves once every transaction sent so far has been answered (applied or refused): after
   * `close()`, a write still on its way to etcd can land later than anything sent after this.
   */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.sent]);
  }

  private dropPending(): void {
    const dropped = this.queue;
    this.queue = [];
    this.queuedBytes = 0;
    this.queuedClaims = 0;
    this.queuedDeletions = 0;
    for (const write of dropped) this.done(write, NOT_CLAIMED);
  }

  /**
   * Sends whatever may go now (see the class comment): at the end of the current callback when a claim
   * or a deletion waits, else on the next turn; `send` asks again when answered.
   */
  private schedule(): void {
    if (!this.sendable()) return;
    if (this.queuedClaims > 0 || this.queuedDeletions > 0) {
      if (this.flushSoon) return;
      this.flushSoon = true;
      queueMicrotask(() => {
        this.flushSoon = false;
        this.flush();
      });
    } else if (!this.flushNextTurn) {
      this.flushNextTurn = true;
      setImmediate(() => {
        this.flushNextTurn = false;
        this.flush();
      });
    }
  }

  private sendable(): boolean {
    if (this.queue.length === 0 || this.inFlight >= MAX_IN_FLIGHT) return false;
    if (this.inFlight === 0) return true;
    if (this.queue.length >= MAX_TXN_OPS - NESTED_OPS || this.queuedBytes >= MAX_TXN_BYTES) return true;
    if (this.queuedClaims > 0 && this.claimsInFlight === 0) return true;
    return this.queuedDeletions > 0 && this.deletionsInFlight === 0;
  }

  private flush(): void {
    while (this.sendable()) void this.send(this.takeBatch());
  }

  /**
   * Up to MAX_TXN_OPS writes and MAX_TXN_BYTES with distinct keys (etcd rejects a transaction naming a key
   * twice); scans only as far as it takes. etcd counts a nested transaction's operations on top of
   * the outer ones, so a batch with claims or deletions holds NESTED_OPS fewer writes.
   */
  private takeBatch(): PendingWrite[] {
    const batch: PendingWrite[] = [];
    const keys = new Set<string>();
    const later: PendingWrite[] = [];
    let scanned = 0;
    let bytes = 0;
    let nested = false;
    while (scanned < this.queue.length) {
      const write = this.queue[scanned] as PendingWrite;
      const limit = nested || write.nested ? MAX_TXN_OPS - NESTED_OPS : MAX_TXN_OPS;
      if (batch.length > 0 && (bytes + write.bytes > MAX_TXN_BYTES || batch.length >= limit)) break;
      scanned++;
      if (keys.has(write.key)) later.push(write);
      else {
        keys.add(write.key);
        batch.push(write);
        bytes += write.bytes;
        nested ||= write.nested;
      }
    }
    this.queue.splice(0, scanned, ...later);
    this.queuedBytes -= bytes;
    this.queuedClaims -= claims(batch);
    this.queuedDeletions -= deletions(batch);
    return batch;
  }

  private async send(batch: PendingWrite[]): Promise<void> {
    const carriesClaims = claims(batch) > 0;
    const carriesDeletions = deletions(batch) > 0;
    this.inFlight++;
    if (carriesClaims) this.claimsInFlight++;
    if (carriesDeletions) this.deletionsInFlight++;
    let pending = batch;
    let retry = false;
    try {
      if (this.closed.aborted) return;
      // Each write lands or is refused on its own; only a claim whose run lock was not as believed goes again.
      while (pending.length > 0) {
        const outcomes = await this.commit(pending);
        // A lock of another lease is honoured only once a worker is found behind it.
        const seen = outcomes.flatMap((outcome) => (isSeen(outcome) ? [outcome] : []));
        const verified = seen.length > 0 ? await this.locks.verify(seen) : [];
        const again: PendingWrite[] = [];
        pending.forEach((write, i) => {
          let outcome = outcomes[i] ?? NOT_CLAIMED;
          if (isSeen(outcome)) outcome = verified[seen.indexOf(outcome)] ?? AGAIN;
          if (outcome === AGAIN) again.push(write);
          else this.done(write, outcome);
        });
        pending = again;
      }
      this.retry.reset();
    } catch (error) {
      if (this.closed.aborted) return;
      // A status must not stay stale while the lease lives: try again, later each time etcd refuses.
      const wait = this.retry.next();
      this.logger[isEtcdBusy(error) ? "debug" : "warn"](
        { err: error, writes: pending.length, retryInMs: wait },
        "status write failed; retrying",
      );
      retry = await delay(wait, this.closed).then(
        () => true,
        () => false,
      );
    } finally {
      this.inFlight--;
      if (carriesClaims) this.claimsInFlight--;
      if (carriesDeletions) this.deletionsInFlight--;
      if (retry) {
        this.queue.unshift(...pending);
        for (const write of pending) this.queuedBytes += write.bytes;
        this.queuedClaims += claims(pending);
        this.queuedDeletions += deletions(pending);
      } else for (const write of pending) this.done(write, NOT_CLAIMED);
      this.schedule();
    }
  }

  /**
   * One transaction with every write of the batch (claims and deletions nested); the outcome of each.
   * With claims, it compares the registration once: when that fails (the session is ending), every
   * claim is refused and the other writes go again, in a transaction without claims.
   */
  private async commit(batch: PendingWrite[]): Promise<Array<ClaimResult | SeenLock | typeof AGAIN>> {
    const { locks } = this;
    const lease = locks.leaseField;
    const ops = batch.map(({ taskId, key, value, guard }): IRequestOp => {
      if (value === undefined) return locks.remove(taskId, key);
      if (guard) return locks.claim(taskId, key, value, guard.key, guard.modRevision);
      return { request_put: { key: Buffer.from(key), value: Buffer.from(value), lease } };
    });
    const claiming = batch.some((write) => write.guard);
    const compare = claiming ? [locks.registered()] : [];
    const txn = this.client.kv.txn({ compare, success: ops, failure: [] }, requestDeadline());
    this.sent.add(txn);
    const answered = () => void this.sent.delete(txn);
    txn.then(answered, answered);
    const response = await unlessAborted(txn, this.closed);
    const revision = Number(response.header.revision);
    if (!response.succeeded) return batch.map((write) => (write.guard ? NOT_CLAIMED : AGAIN));
    return batch.map((write, i) => {
      if (write.value === undefined) locks.removed(write.taskId);
      if (!write.guard) return CLAIMED;
      const nested = response.responses[i]?.response_txn;
      return locks.outcome(write.taskId, write.guard.modRevision, nested, revision);
    });
  }
}

function claims(writes: PendingWrite[]): number {
  return writes.reduce((count, write) => count + (write.guard ? 1 : 0), 0);
}

function deletions(writes: PendingWrite[]): number {
  return writes.reduce((count, write) => count + (write.value === undefined ? 1 : 0), 0);
}

function isSeen(outcome: ClaimResult | SeenLock | typeof AGAIN): outcome is SeenLock {
  return typeof outcome === "object" && "lock" in outcome;
}
