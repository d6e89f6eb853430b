import type { TaskStatus } from "../node/index.js";
import { SerialJob } from "../runtime/index.js";

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
 */
export class StatusPublisher {
  private queue: QueuedStatus[] = [];
  /** Writes the queue out, one status at a time. */
  private readonly writer = new SerialJob(() => this.drain());
  private stored?: TaskStatus;

  constructor(
    private readonly taskId: string,
    private readonly sink: StatusSink,
    private readonly onStored?: (status: TaskStatus | undefined) => void,
  ) {}

  /** Queues a status to store (undefined: delete the key). */
  publish(status: TaskStatus | undefined): void {
    this.queue.push({ status });
    this.writer.request();
  }

  /** Queues a status that is stored only as a start claim (see `StatusSink.claim`); resolves with its outcome. */
  claim(status: TaskStatus, taskRevision: number): Promise<ClaimResult> {
    return new Promise((settle) => {
      this.queue.push({ status, claim: { taskRevision, settle } });
      this.writer.request();
    });
  }

  /** The status etcd was last given (undefined: none). */
  get storedStatus(): TaskStatus | undefined {
    return this.stored;
  }

  /** Resolves once every published status has been written. */
  flushed(): Promise<void> {
    return this.writer.running ? this.writer.idle() : WRITTEN;
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const { status, claim } = this.queue.shift() as QueuedStatus;
      if (claim && status) {
        const result = await this.sink.claim(this.taskId, status, claim.taskRevision);
        claim.settle(result);
        if (!result.claimed) continue;
      } else if (status) await this.sink.put(this.taskId, status);
      else await this.sink.remove(this.taskId);
      this.stored = status;
      this.onStored?.(status);
    }
  }
}
