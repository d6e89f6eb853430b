import type { TaskSpec } from "./task-runner.js";

/** The restart limit the master wrote into a task's value (`restart: {limit, window}`), if any. */
export interface RestartLimit {
  limit: number;
  windowMs: number;
}

/** Failure times kept per task at most (the limit is small; this bounds a task failing for days). */
const MAX_REMEMBERED = 100;

/** The task's restart limit, or undefined when it restarts on this worker forever (no limit, or 0). */
export function restartLimitOf(spec: TaskSpec | undefined): RestartLimit | undefined {
  if (!spec || !("task" in spec)) return undefined;
  const restart = spec.task.restart as { limit?: unknown; window?: unknown } | undefined;
  const limit = restart?.limit;
  const windowMs = restart?.window;
  if (typeof limit !== "number" || !Number.isInteger(limit) || limit <= 0) return undefined;
  if (typeof windowMs !== "number" || !Number.isFinite(windowMs) || windowMs <= 0) return undefined;
  return { limit, windowMs };
}

export interface CountedFailure {
  /** Failures within the window (all since the task value was set when it has no limit). */
  failures: number;
  /** The limit is reached: no restart here before `retryInMs`. */
  exhausted: boolean;
  retryInMs: number;
}

/** The times a task failed on this worker, as the restart limit counts them. */
export class FailureWindow {
  private times: number[] = [];

  clear(): void {
    this.times = [];
  }

  /** Counts a failure at `now`; with a limit, only those within its window count. */
  add(now: number, limit: RestartLimit | undefined): CountedFailure {
    this.times.push(now);
    if (limit) this.times = this.times.filter((at) => at > now - limit.windowMs);
    if (this.times.length > MAX_REMEMBERED) this.times.splice(0, this.times.length - MAX_REMEMBERED);
    const failures = this.times.length;
    if (!limit || failures < limit.limit) return { failures, exhausted: false, retryInMs: 0 };
    // Starts again once the oldest of the last `limit` failures leaves the window.
    const oldest = this.times[failures - limit.limit] as number;
    return { failures, exhausted: true, retryInMs: Math.max(0, oldest + limit.windowMs - now) };
  }
}
