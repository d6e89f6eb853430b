/** Shapes of the values stored under escheduler's keys (see DESIGN.md, "Keys"). */

// The task shape is the planner's (a pure leaf module); a type-only import keeps node free of its code.
export type { Task } from "../balancer/types.js";

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
