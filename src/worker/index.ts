export {
  loadHandler,
  type RunHandler,
  type RunningTask,
  type StartStopHandler,
  type TaskContext,
  type TaskHandler,
  type TaskLauncher,
  taskLauncher,
} from "./handler.js";
export type { RetryOptions, TaskRunState, TaskStateChange } from "./task-runner.js";
export type {
  RemovalReason,
  TaskChange,
  WorkerEvents,
  WorkerOptions,
  WorkerStatus,
  WorkerTask,
} from "./types.js";
export { Worker } from "./worker.js";
