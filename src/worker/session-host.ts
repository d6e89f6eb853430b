import type { TaskChange, WorkerEvents, WorkerStatus } from "./types.js";

/** What a session reports to the worker that supervises it. */
export interface SessionHost {
  emit<E extends keyof WorkerEvents>(event: E, ...args: WorkerEvents[E]): void;
  /** A change of the assigned tasks, for `taskChanges()` subscribers. */
  publish(change: TaskChange): void;
  setStatus(status: WorkerStatus): void;
  status(): WorkerStatus;
  /** Something readiness depends on changed (a task, a status write, the plan). */
  changed(): void;
  /** Resolves at the next `changed()`. */
  nextChange(): Promise<void>;
  /** The first snapshot of the tasks has been applied. */
  registered(): void;
}
