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
export {
  type RemovalReason,
  type TaskChange,
  Worker,
  type WorkerEvents,
  type WorkerOptions,
  type WorkerStatus,
  type WorkerTask,
} from "./worker.js";
