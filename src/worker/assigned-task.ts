import type { TaskRunState, TaskSpec } from "./task-runner.js";

/**
 * One task id in a worker's assignment table, whoever runs it: a `TaskRunner` (the worker's handler)
 * or a `ReportedTask` (the library user, reporting states). The worker feeds it what is assigned and
 * reads back what runs.
 */
export interface AssignedTask {
  readonly taskId: string;
  /** What runs now (`stopped`: nothing, no status key). */
  readonly state: TaskRunState;
  /** The state etcd holds (readiness is judged on what others can see). */
  readonly storedState: TaskRunState;
  readonly error: string | undefined;
  readonly attempt: number;
  /** Nothing assigned, nothing runs, nothing pending: the worker may drop it. */
  readonly settled: boolean;
  /** What the master assigns now (undefined: nothing). */
  set(spec: TaskSpec | undefined): void;
  /** Resolves once every pending operation (a stop, a status write) is done. */
  idle(): Promise<void>;
}
