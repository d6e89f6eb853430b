/** Shapes of the values stored under escheduler's keys (see DESIGN.md, "Keys"). */

/** A task as the generator returns it and as `/R/task/<worker>/<id>` stores it. */
export interface Task {
  /** Unique within the root. */
  id: string;
  /** Affinity: all tasks with the same key always share one worker. */
  key?: string;
  /** Balance group: loads are balanced per group (default ""). */
  group?: string;
  /** Higher is written, and so started, first; default 0. */
  priority?: number;
  /** Load units, > 0, default 1. */
  weight?: number;
  /** JSON data for the handler. */
  payload?: unknown;
}

export type TaskState = "starting" | "running" | "failed" | "stopping";

/** The value of `/R/status/<worker>/<taskId>`, written by the worker under its lease. */
export interface TaskStatus {
  state: TaskState;
  attempt: number;
  /** RFC 3339 time the task entered this state. */
  since: string;
  error?: string;
}

/** The value of `/R/plan`: the last plan the leader applied. */
export interface PlanRecord {
  epoch: number;
  leader: string;
  /** RFC 3339 time the plan was applied. */
  at: string;
  workers: string[];
  tasks: number;
  moved: number;
}

/** Parses a stored JSON value, or returns undefined when it is not valid JSON. */
export function parseRecord<T>(value: string | Buffer | null | undefined): T | undefined {
  if (value === null || value === undefined) return undefined;
  try {
    return JSON.parse(value.toString()) as T;
  } catch {
    return undefined;
  }
}
