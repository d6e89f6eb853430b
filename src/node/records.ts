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

/** The value of `/R/cordon/<worker>`: `cordon` takes nothing new and keeps its tasks; `drain` hands its tasks off. */
export interface CordonRecord {
  mode: "cordon" | "drain";
  reason?: string;
  /** RFC 3339 time the operator set it. */
  at: string;
}

/** The value of `/R/draining/<worker>`, written by a worker under its own lease while it drains itself. */
export interface DrainingMark {
  /** RFC 3339 time the worker began to drain. */
  at: string;
}

/** The value of `/R/paused`: present while no schedule may write. */
export interface PausedRecord {
  reason?: string;
  /** RFC 3339 time the operator paused. */
  at: string;
}

/** How the leader answered one schedule request (also the `outcome` of a history record). */
export interface ScheduleOutcome {
  state: "applied" | "refused" | "failed";
  /** Why it was refused or failed (one line). */
  reason?: string;
  /** Epoch of the leader that answered. */
  epoch?: number;
  leader?: string;
}

/** The value of `/R/request/<id>`: written by `escheduler schedule`, answered by the leader in `outcome`. */
export interface ScheduleRequestRecord {
  reason?: string;
  allowRemoval: boolean;
  /** RFC 3339 time of the request. */
  at: string;
  outcome?: ScheduleOutcome;
}

/** One task that changed owner in a schedule; `from`/`to` are absent for a task added or removed. */
export interface HistoryMove {
  id: string;
  from?: string;
  to?: string;
}

/** The value of `/R/history/<16-digit revision>`: one applied or refused schedule. */
export interface HistoryRecord {
  /** RFC 3339 time of the schedule's outcome. */
  at: string;
  leader: string;
  epoch: number;
  outcome: "applied" | "refused";
  /** Why a schedule was refused. */
  refusal?: string;
  /** What asked for the schedule (coalesced triggers). */
  reasons: string[];
  workers: string[];
  tasks: number;
  added: number;
  removed: number;
  moved: number;
  unassigned: number;
  /** Up to 100 tasks that moved, were added or removed, with their from/to worker. */
  moves: HistoryMove[];
  /** True when more tasks changed than `moves` lists. */
  movesTruncated?: boolean;
}
