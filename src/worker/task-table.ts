import type { Logger } from "../node/index.js";
import type { AssignedTask, AssignedTaskOptions } from "./assigned-task.js";
import type { TaskLauncher } from "./handler.js";
import { ReportedTask } from "./reported-task.js";
import type { SessionHost } from "./session-host.js";
import type { StatusSink } from "./status-publisher.js";
import { type RetryOptions, TaskRunner } from "./task-runner.js";

export interface TaskTableOptions {
  name: string;
  status: StatusSink;
  host: SessionHost;
  /** Runs the tasks; without one, the worker's user runs them and reports their states. */
  launcher?: TaskLauncher;
  logger: Logger;
  stopTimeoutMs: number;
  startRetry: RetryOptions;
}

/**
 * A session's table of what runs each task id (kept while it stops, after it is no longer assigned),
 * each made at the task's first assignment, all given one set of callbacks (each told its task).
 */
export class TaskTable {
  private readonly table = new Map<string, AssignedTask>();
  /** Ids whose task last stored `running` (a superset). */
  private readonly storedRunning = new Set<string>();
  private readonly hooks: Omit<AssignedTaskOptions, "taskId">;

  constructor(private readonly options: TaskTableOptions) {
    const { name: worker, status, host } = options;
    this.hooks = {
      worker,
      status,
      onState: (change) => host.emit("taskState", change),
      onStored: (task) => {
        if (this.table.get(task.taskId) === task)
          this.storedRunning[task.storedState === "running" ? "add" : "delete"](task.taskId);
        host.changed();
      },
      onSettled: (task) => {
        if (this.table.get(task.taskId) === task && task.settled) this.table.delete(task.taskId);
        host.changed();
      },
    };
  }

  /** Task id → what runs it. */
  get runners(): ReadonlyMap<string, AssignedTask> {
    return this.table;
  }

  /** How many tasks last stored `running`, at least: fewer than assigned answers readiness without a scan. */
  get storedRunningCount(): number {
    return this.storedRunning.size;
  }

  get(id: string): AssignedTask | undefined {
    return this.table.get(id);
  }

  /** What runs `id`, made now if nothing does. */
  runnerFor(id: string): AssignedTask {
    const existing = this.table.get(id);
    if (existing) return existing;
    const { launcher, logger, stopTimeoutMs, startRetry: retry } = this.options;
    const { worker, status, onState, onStored, onSettled } = this.hooks;
    // Spelled out, not spread: a spread and five more fields cost more than the rest of a task's set-up.
    const created: AssignedTask = launcher
      ? new TaskRunner({
          taskId: id,
          worker,
          status,
          onState,
          onStored,
          onSettled,
          launcher,
          logger,
          stopTimeoutMs,
          retry,
        })
      : new ReportedTask({ taskId: id, worker, status, onState, onStored, onSettled });
    this.table.set(id, created);
    return created;
  }
}
