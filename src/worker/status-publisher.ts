import type { TaskStatus } from "../node/index.js";

/** Where a task's status goes (`/R/status/<me>/<id>` under the worker's lease); never throws. */
export interface StatusSink {
  put(taskId: string, status: TaskStatus): Promise<void>;
  remove(taskId: string): Promise<void>;
}

/**
 * Writes one task's status in the background, in order, latest wins: a state overtaken while a write
 * was in flight is skipped. Keeps etcd round trips off the path to the handler.
 */
export class StatusPublisher {
  private next?: TaskStatus;
  private hasNext = false;
  private writing?: Promise<void>;
  private stored?: TaskStatus;

  constructor(
    private readonly taskId: string,
    private readonly sink: StatusSink,
    private readonly onStored?: (status: TaskStatus | undefined) => void,
  ) {}

  /** Queues a status to store (undefined: delete the key). */
  publish(status: TaskStatus | undefined): void {
    this.next = status;
    this.hasNext = true;
    this.writing ??= this.drain();
  }

  /** The status etcd was last given (undefined: none). */
  get storedStatus(): TaskStatus | undefined {
    return this.stored;
  }

  /** Resolves once every published status has been written. */
  async flushed(): Promise<void> {
    while (this.writing) await this.writing;
  }

  private async drain(): Promise<void> {
    while (this.hasNext) {
      const status = this.next;
      this.hasNext = false;
      if (status) await this.sink.put(this.taskId, status);
      else await this.sink.remove(this.taskId);
      this.stored = status;
      this.onStored?.(status);
    }
    this.writing = undefined;
  }
}
