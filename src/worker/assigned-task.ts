import { type LockHeld, StatusPublisher, type StatusSink } from "./status-publisher.js";
import type { TaskRunState, TaskSpec, TaskStateChange } from "./task-runner.js";
import type { WorkerTask } from "./types.js";

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
  /** Another worker took the run lock this one held (its lock went by hand): the task must not run here. */
  lockLost(holder: LockHeld): void;
}

/** What every kind of assigned task is given. */
export interface AssignedTaskOptions {
  taskId: string;
  worker: string;
  status: StatusSink;
  /** Every state change, at once (its status is written in the background). */
  onState?: (change: TaskStateChange) => void;
  /** After a status write (or deletion) of `task` has reached the sink. */
  onStored?: (task: AssignedTask) => void;
  /** Called when `task` has nothing to run and has stopped, so its owner may drop it. */
  onSettled?: (task: AssignedTask) => void;
}

/** The state both kinds of assigned task keep the same way: the last state, its error, and its status writes. */
export abstract class TaskStateKeeper<
  O extends AssignedTaskOptions = AssignedTaskOptions,
> implements AssignedTask {
  protected current: TaskRunState = "stopped";
  protected currentError?: string;
  protected readonly status: StatusPublisher;

  constructor(protected readonly options: O) {
    this.status = new StatusPublisher(options.taskId, options.status, () => options.onStored?.(this));
  }

  abstract get attempt(): number;
  abstract get settled(): boolean;
  abstract set(spec: TaskSpec | undefined): void;
  abstract idle(): Promise<void>;
  abstract lockLost(holder: LockHeld): void;

  get taskId(): string {
    return this.options.taskId;
  }
  get state(): TaskRunState {
    return this.current;
  }
  /** The state etcd holds for this task (`stopped`: no status key). */
  get storedState(): TaskRunState {
    return this.status.storedStatus?.state ?? "stopped";
  }
  get error(): string | undefined {
    return this.currentError;
  }

  /** Records a state change and tells the owner (its status is written separately). */
  protected changed(state: TaskRunState, error?: string): void {
    this.current = state;
    this.currentError = error;
    const { onState } = this.options;
    if (!onState) return;
    const change: TaskStateChange = { task: this.taskId, state, attempt: this.attempt };
    if (error !== undefined) change.error = error;
    onState(change);
  }
}

/** The tasks assigned (`assigned`: task id → spec) and those still stopping, with what runs them, as `Worker.tasks()` lists them. */
export function describeTasks(
  assigned: ReadonlyMap<string, TaskSpec>,
  runners: ReadonlyMap<string, AssignedTask>,
): WorkerTask[] {
  const stopping = [...runners.values()].filter((runner) => runner.state !== "stopped");
  const ids = new Set([...assigned.keys(), ...stopping.map((runner) => runner.taskId)]);
  return [...ids].sort().map((id) => {
    const spec = assigned.get(id);
    const runner = runners.get(id);
    const error = runner?.error;
    return {
      id,
      ...(spec && "task" in spec ? { task: spec.task } : {}),
      state: runner?.state ?? "stopped",
      attempt: runner?.attempt ?? 0,
      ...(error === undefined ? {} : { error }),
    };
  });
}
