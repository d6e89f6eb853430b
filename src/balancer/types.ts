/** Worker labels: key → value, Kubernetes label syntax (see labels.ts). */
export type Labels = Readonly<Record<string, string>>;

/**
 * One label requirement of a selector: a value (equals), a list (one of), `{ notIn: [...] }` (the
 * label is absent or has none of these values) or `{ exists: true | false }`.
 */
export type SelectorTerm = string | readonly string[] | { notIn: readonly string[] } | { exists: boolean };

/** A hard placement constraint: every term must hold on the worker's labels. */
export type Selector = Readonly<Record<string, SelectorTerm>>;

/**
 * Spread of a group's tasks over the values of a worker label: per value the counts differ by at most
 * `maxSkew` (default 1). Soft by default (when that is impossible, as even as possible); `hard` leaves
 * the excess unassigned instead.
 */
export interface Spread {
  label: string;
  maxSkew?: number;
  hard?: boolean;
}

/** A task as the generator returns it; the planner reads everything but the payload. */
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
  /** Hard: only a worker whose labels match every term may run it. */
  selector?: Selector;
  /** Spread of this group's tasks over a label's values (the group's tasks that carry it must agree). */
  spread?: Spread;
  /** Tasks sharing an antiKey run on distinct workers (with `spread`: on distinct values of its label). */
  antiKey?: string;
  /** With the master's `--reassign-delay`: the longest this task may wait for its crashed worker (ms, or "30s"); the planner ignores it. */
  maxDowntime?: number | string;
  /** JSON data for the handler; the planner never reads it. */
  payload?: unknown;
  /** Overrides the master's restart escalation for this task (the planner never reads it). */
  restart?: RestartPolicy;
}

/**
 * When a failing task moves: after `limit` failures on one worker within `window` (ms, or a duration
 * such as "5m") it is not restarted there but moved; after the limit was reached on `quarantineAfter`
 * distinct workers it is quarantined. A limit of 0 restarts on the same worker forever.
 */
export interface RestartPolicy {
  limit?: number;
  window?: number | string;
  quarantineAfter?: number;
}

/**
 * An online worker; `capacity` is the most total task weight it may hold (unlimited when absent). A
 * `cordoned` worker keeps the generated tasks it holds (and its keys' tasks) but takes nothing new.
 */
export interface WorkerSpec {
  name: string;
  capacity?: number;
  cordoned?: boolean;
  /** What task selectors and spreads match against. */
  labels?: Labels;
  /** Rollout generation (absent: ""); with two or more online, see rollout.ts. */
  generation?: string;
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
  /** Rollout generations, newest first: during a rollout tasks move to the newest first (rollout.ts). */
  generations?: readonly string[];
  /** Task id → workers it must not go to (where it kept failing); unknown ids and workers are ignored. */
  exclude?: AssignmentInput;
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
  /** Ids placed nowhere (capacity, constraints); each has its reason in `reasons`. */
  unassigned: string[];
  /** Unassigned id → why (null prototype). */
  reasons: Record<string, UnassignedReason>;
  /** Tasks that ran on some worker and now go to another one. */
  moved: number;
}

/** The fixed kinds of reasons a task stays unassigned (the metric's label values). */
export const REASON_KINDS = [
  "capacity",
  "selector",
  "spread",
  "antiKey",
  "key",
  "failed",
  "quarantined",
] as const;
export type ReasonKind = (typeof REASON_KINDS)[number];

/** Why a task is unassigned: a fixed `kind` and a sentence a person can act on. */
export interface UnassignedReason {
  kind: ReasonKind;
  text: string;
}
