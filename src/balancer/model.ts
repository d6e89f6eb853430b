/**
 * The balancer's working model, shared by its placement passes (keyed, least-load, weighted): the
 * input indexed into flat arrays, the plan under construction, and one group's unkeyed tasks.
 */

/**
 * The planner's input as flat arrays indexed by worker and task number. Workers are sorted by name so
 * that the order of `workers` never changes a plan; tasks keep their input order.
 */
export interface Problem {
  workers: string[];
  workerIndex: Map<string, number>;
  /** Most total weight per worker; Infinity when unlimited. */
  capacity: Float64Array;
  hasCapacity: boolean;
  /** Labels per worker (undefined: none). */
  labels: Array<Readonly<Record<string, string>> | undefined>;
  ids: string[];
  /** Task id → task number. */
  taskIndex: { get(id: string): number | undefined };
  group: Int32Array;
  groupCount: number;
  /** Key number, or -1 for a task without a key. */
  key: Int32Array;
  keyCount: number;
  keyNames: string[];
  priority: Float64Array;
  weight: Float64Array;
  /** Task numbers by priority, highest first, then input order. */
  order: Int32Array;
  /** The online worker that runs the task now (the first by name if several list it), or -1. */
  holder: Int32Array;
  /** Task number → the worker numbers it must not go to (from `exclude`; only tasks with some). */
  avoid?: Map<number, number[]>;
  /** `current` as listings: worker name, its number (-1 when offline), the ids and their task numbers (-1: not generated). */
  current: Array<{ worker: string; index: number; ids: readonly string[]; tasks: Int32Array }>;
}

/** The plan under construction: where each task goes and how much weight each worker carries. */
export interface Placement {
  /** Worker number per task, or -1 while unplaced (and at the end: unassigned). */
  target: Int32Array;
  /** Total weight placed per worker. */
  load: Float64Array;
  /** Weight of keyed tasks per worker (the unkeyed balancing breaks ties away from it). */
  keyedLoad: Float64Array;
}

/** One group's tasks without a key, as the unkeyed passes balance them. */
export interface GroupTasks {
  group: number;
  /** Task numbers by priority, highest first. */
  tasks: number[];
  unit: boolean;
  total: number;
  largest: number;
}
