import type { TaskStatus } from "../node/index.js";

/**
 * How a start claim ended: stored (with the task's run lock), refused because the task key changed
 * or went (the master moved it) or there is no lease, or refused because another holder has the
 * task's run lock; `released` then resolves once that lock changes (or rejects when `signal` aborts).
 */
export type ClaimResult =
  | { claimed: true; heldBy?: undefined }
  | { claimed: false; heldBy?: undefined }
  | { claimed: false; heldBy: string; released: (signal: AbortSignal) => Promise<void> };

/** A claim refused because another worker holds the task's run lock (or, its lock deleted by hand, still reports it). */
export type LockHeld = Extract<ClaimResult, { heldBy: string }>;

export const CLAIMED: ClaimResult = { claimed: true };
const WRITTEN = Promise.resolve();
export const NOT_CLAIMED: ClaimResult = { claimed: false };

/** Where a task's status goes (`/R/status/<me>/<id>` under the worker's lease); never throws. */
export interface StatusSink {
  /** Resolves (with no value to read) once the status is written, or dropped with the lease. */
  put(taskId: string, status: TaskStatus): Promise<unknown>;
  /** Deletes the status, and with it the task's run lock if this worker's lease holds it. */
  remove(taskId: string): Promise<unknown>;
  /**
   * Writes the status and takes the task's run lock (`/R/run/<id>`) in one transaction, only while
   * the task key still has mod revision `taskRevision` and no other lease holds the lock.
   */
  claim(taskId: string, status: TaskStatus, taskRevision: number): Promise<ClaimResult>;
}

interface QueuedStatus {
  /** Undefined: delete the key. */
  status?: TaskStatus;
  /** With a claim: the task key's mod revision that must still hold, and who waits for the outcome. */
  claim?: { taskRevision: number; settle: (result: ClaimResult) => void };
}

/**
 * Writes one task's statuses in the background, one at a time and in order, so each state a task
 * goes through reaches etcd without putting an etcd round trip on the path to the handler.
 *
 * Invariant: at most one status of the task is with the sink at a time, handed over in the order
 * published; the next goes only once the previous is answered (and, for a claim, settled). A chain
 * of callbacks rather than an async loop: a start's two writes then cost no async frames.
 */
export class StatusPublisher {
  private queue: QueuedStatus[] = [];
  /** A status is with the sink, not yet answered. */
  private writing = false;
  /** Waiters of `flushed()`: resolved once the queue is empty and nothing is with the sink. */
  private drained?: { promise: Promise<void>; resolve: () => void; reject: (error: unknown) => void };
  private stored?: TaskStatus;

  constructor(
    private readonly taskId: string,
    private readonly sink: StatusSink,
    private readonly onStored?: (status: TaskStatus | undefined) => void,
  ) {}

  /** Queues a status to store (undefined: delete the key). */
  publish(status: TaskStatus | undefined): void {
    this.queue.push({ status });
    this.next();
  }

  /** Queues a status that is stored only as a start claim (see `StatusSink.claim`); resolves with its outcome. */
  claim(status: TaskStatus, taskRevision: number): Promise<ClaimResult> {
    return new Promise((settle) => {
      this.queue.push({ status, claim: { taskRevision, settle } });
      this.next();
    });
  }

  /** The status etcd was last given (undefined: none). */
  get storedStatus(): TaskStatus | undefined {
    return this.stored;
  }

  /** Resolves once every published status has been written. */
  flushed(): Promise<void> {
    if (!this.writing) return WRITTEN;
    if (!this.drained) {
      let resolve!: () => void;
      let reject!: (error: unknown) => void;
      const promise = new Promise<void>((done, fail) => ((resolve = done), (reject = fail)));
      this.drained = { promise, resolve, reject };
    }
    return this.drained.promise;
  }

  /** Hands the next queued status to the sink, unless one is there (the answer to it calls this again). */
  private next(): void {
    if (this.writing) return;
    const entry = this.queue.shift();
    if (!entry) {
      const drained = this.drained;
      this.drained = undefined;
      drained?.resolve();
      return;
    }
    this.writing = true;
    const { status, claim } = entry;
    const written =
      claim && status
        ? this.sink.claim(this.taskId, status, claim.taskRevision)
        : status
          ? this.sink.put(this.taskId, status)
          : this.sink.remove(this.taskId);
    written.then(
      (result) => this.answered(entry, result as ClaimResult | undefined),
      (error: unknown) => this.failed(error),
    );
  }

  private answered({ status, claim }: QueuedStatus, result: ClaimResult | undefined): void {
    if (claim) claim.settle(result as ClaimResult);
    if (!claim || result?.claimed) {
      this.stored = status;
      this.onStored?.(status);
    }
    this.writing = false;
    this.next();
  }

  /** A sink that broke its promise never to reject: `flushed()` rejects (unheard, it is unhandled); the queue goes on at the next status. */
  private failed(error: unknown): void {
    this.writing = false;
    const drained = this.drained;
    this.drained = undefined;
    if (!drained) throw error;
    drained.reject(error);
  }
}
