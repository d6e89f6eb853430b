/** A task as the generator returns it; the planner reads id, key, group, priority and weight. */
export interface Task {
  /** Unique among the generated tasks; 1–200 characters, no "/" and no control characters. */
  id: string;
  /** Affinity: all tasks with the same key always share one worker. */
  key?: string;
  /** Balance group: loads are balanced per group (default ""). */
  group?: string;
  /** Higher is placed, written and started first; default 0. */
  priority?: number;
  /** Load units, finite and > 0, default 1. */
  weight?: number;
  /** JSON data for the handler; the planner never reads it. */
  payload?: unknown;
}

/**
 * An online worker; `capacity` is the most total task weight it may hold (unlimited when absent). A
 * `cordoned` worker keeps the generated tasks it holds (and its keys' tasks) but takes nothing new.
 */
export interface WorkerSpec {
  name: string;
  capacity?: number;
  cordoned?: boolean;
}

/** worker name → ids of the tasks assigned to it, as a plain record or a Map. */
export type AssignmentInput =
  Readonly<Record<string, readonly string[]>> | ReadonlyMap<string, readonly string[]>;

export interface PlanInput {
  /** The online workers. */
  workers: ReadonlyArray<string | WorkerSpec>;
  /** Every task that should run. */
  tasks: readonly Task[];
  /** What runs now; may name workers that are gone and ids no longer generated. */
  current?: AssignmentInput;
}

/**
 * The target and its diff, as plain records with a null prototype (any worker name is a safe key,
 * and the plan serializes as JSON). `assignment`, `add` and `unassigned` list ids by priority, highest
 * first, then in the order of `tasks`; `remove` lists keep the order of `current`.
 */
export interface Plan {
  /** Every online worker → the ids it should run (empty arrays included). */
  assignment: Record<string, string[]>;
  /** Worker → ids to start there; only workers with something to add. */
  add: Record<string, string[]>;
  /** Worker → ids to stop there, gone workers and ids no longer generated included; only non-empty. */
  remove: Record<string, string[]>;
  /** Ids that no worker has the capacity for. */
  unassigned: string[];
  /** Tasks that ran on some worker and now go to another one. */
  moved: number;
}
