import type { TaskStatus } from "../node/index.js";

/** Where a task's status goes (`/R/status/<me>/<id>` under the worker's lease); never throws. */
export interface StatusSink {
  put(taskId: string, status: TaskStatus): Promise<void>;
  remove(taskId: string): Promise<void>;
}

/**
 * Writes one task's statuses in the background, one at a time and in order, so each state a task
 * goes through reaches etcd without putting an etcd round trip on the path to the handler.
 */
export class StatusPublisher {
  private queue: Array<TaskStatus | undefined> = [];
  private writing?: Promise<void>;
  private stored?: TaskStatus;

  constructor(
    private readonly taskId: string,
    private readonly sink: StatusSink,
    private readonly onStored?: (status: TaskStatus | undefined) => void,
  ) {}

  /** Queues a status to store (undefined: delete the key). */
  publish(status: TaskStatus | undefined): void {
    this.queue.push(status);
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
    while (this.queue.length > 0) {
      const status = this.queue.shift();
      if (status) await this.sink.put(this.taskId, status);
      else await this.sink.remove(this.taskId);
      this.stored = status;
      this.onStored?.(status);
    }
    this.writing = undefined;
  }
}
