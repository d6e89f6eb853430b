/**
 * Shapes of the values stored under escheduler's keys (see DESIGN.md, "Keys"), as zod schemas: anyone
 * can write into etcd, so every record is validated when read (`readRecord`), never trusted.
 */
import type { IKeyValue } from "etcd3";
import { z } from "zod";
import { nameProblem } from "./keys.js";
import type { Logger } from "./logger.js";
import { actorFields, taskActionSchema } from "./operator-records.js";

// The task shape is the planner's (a pure leaf module); a type-only import keeps node free of its code.
export type { Task } from "../balancer/types.js";

const count = z.number().int().nonnegative();
const workerName = z.string().refine((name) => nameProblem(name) === undefined, "not a valid worker name");
/** RFC 3339 times are shown, never computed with, so any string passes. */
const time = z.string();

export const taskStateSchema = z.enum(["starting", "running", "failed", "stopping"]);
export type TaskState = z.infer<typeof taskStateSchema>;

/** The value of `/R/status/<worker>/<taskId>`, written by the worker under its lease. */
export const taskStatusSchema = z.object({
  state: taskStateSchema,
  attempt: count,
  /** RFC 3339 time the task entered this state. */
  since: time,
  error: z.string().optional(),
  /** Failures of the handler (start threw, or the task ended by itself) within the restart window. */
  failures: count.optional(),
  /** The restart limit is reached: the worker starts it no more until the window lets it. */
  exhausted: z.boolean().optional(),
});
export type TaskStatus = z.infer<typeof taskStatusSchema>;

/** The value of `/R/worker/<name>`, written by the worker under its lease. */
export const workerInfoSchema = z.object({
  name: z.string(),
  host: z.string(),
  pid: count,
  version: z.string(),
  startedAt: time,
  capacity: z.number().int().positive().optional(),
  labels: z.record(z.string(), z.string()).optional(),
  /** Rollout generation (`--generation`, default a hash of the handler module). */
  generation: z.string().optional(),
});
export type WorkerInfo = z.infer<typeof workerInfoSchema>;

/** Why tasks stayed unassigned: a count per reason kind, and some of the tasks with their reason. */
const unassignedReasonsSchema = z.record(z.string(), count);
const unassignedTaskSchema = z.object({ id: z.string(), kind: z.string(), text: z.string() });
export type UnassignedTask = z.infer<typeof unassignedTaskSchema>;

/** The value of `/R/plan`: the last plan the leader applied. */
export const planRecordSchema = z.object({
  epoch: count,
  leader: z.string(),
  /** RFC 3339 time the plan was applied. */
  at: time,
  workers: z.array(z.string()),
  tasks: count,
  moved: count,
  /** Unassigned tasks per reason kind (capacity, selector, spread, antiKey, key); absent: none. */
  unassignedReasons: unassignedReasonsSchema.optional(),
  /** Up to 100 unassigned tasks with their reason. */
  unassignedTasks: z.array(unassignedTaskSchema).optional(),
  /** The leader's failure escalation defaults (`--restart-limit`, `--restart-window` in ms, `--quarantine-after`). */
  restart: z.object({ limit: count, window: z.number().positive(), quarantineAfter: count }).optional(),
  /** Pins the plan did not follow (the worker is not eligible for the task), with the reason. */
  ignoredPins: z.array(z.object({ id: z.string(), worker: z.string(), reason: z.string() })).optional(),
});
export type PlanRecord = z.infer<typeof planRecordSchema>;

/** One worker's part of a failure record: its last error and whether the restart limit was reached there. */
export const workerFailureSchema = z.object({
  failures: count,
  error: z.string(),
  /** RFC 3339 time of the last failure seen. */
  at: time,
  /** RFC 3339 time (master's clock) the restart limit was reached on this worker. */
  exhaustedAt: time.optional(),
});
export type WorkerFailure = z.infer<typeof workerFailureSchema>;

/** The value of `/R/failure/<taskId>`, written by the leader: where the task failed, for which task value. */
export const failureRecordSchema = z.object({
  /** The task value (without its restart policy) the failures are about: another value resets them. */
  fingerprint: z.string(),
  workers: z.record(z.string(), workerFailureSchema),
});
export type FailureRecord = z.infer<typeof failureRecordSchema>;

/** The value of `/R/cordon/<worker>`: `cordon` takes nothing new and keeps its tasks; `drain` hands its tasks off. */
export const cordonRecordSchema = z.object({
  mode: z.enum(["cordon", "drain"]),
  /** Who set it and why (absent in records older than the audit trail). */
  ...actorFields,
  /** RFC 3339 time the operator set it. */
  at: time,
});
export type CordonRecord = z.infer<typeof cordonRecordSchema>;

/** An unreadable cordon record still cordons (the safer reading: take nothing new, move nothing) unless it says drain. */
export function repairCordonRecord(raw: unknown): CordonRecord {
  const fields = isObject(raw) ? raw : {};
  return {
    mode: fields.mode === "drain" ? "drain" : "cordon",
    at: typeof fields.at === "string" ? fields.at : "",
  };
}

/** The value of `/R/draining/<worker>`, written by a worker under its own lease while it drains itself. */
export const drainingMarkSchema = z.object({ at: time });
export type DrainingMark = z.infer<typeof drainingMarkSchema>;

/** An RFC 3339 time that the leader computes with (a hold's end). */
const instant = z
  .string()
  .refine((text) => !Number.isNaN(Date.parse(text)), { message: "not an RFC 3339 time" });

/** The value of `/R/held/<worker>`: a crashed worker's tasks wait for it from `since` until `until`. */
export const heldRecordSchema = z.object({
  since: instant,
  until: instant,
  /** Set by `escheduler release`: when, by whom and why the wait was ended. */
  released: time.optional(),
  releasedBy: z.string().optional(),
  reason: z.string().optional(),
});
export type HeldRecord = z.infer<typeof heldRecordSchema>;

/** An unreadable hold is over: its tasks move as a gone worker's do (a new hold is never made of it). */
export function repairHeldRecord(): HeldRecord {
  const epoch = new Date(0).toISOString();
  return { since: epoch, until: epoch };
}

/** The value of `/R/left/<worker>`: the worker stopped on purpose (its tasks are not held); presence counts. */
export const leftMarkSchema = z.object({ at: time });

/** The value of `/R/paused`: present while no schedule may write. */
export const pausedRecordSchema = z.object({
  ...actorFields,
  /** RFC 3339 time the operator paused. */
  at: time,
});
export type PausedRecord = z.infer<typeof pausedRecordSchema>;

/** An unreadable pause record still pauses: the key's presence is what pauses. */
export function repairPausedRecord(raw: unknown): PausedRecord {
  const fields = isObject(raw) ? raw : {};
  return { at: typeof fields.at === "string" ? fields.at : "" };
}

/** How the leader answered one schedule request (also the `outcome` of a history record). */
export const scheduleOutcomeSchema = z.object({
  state: z.enum(["applied", "refused", "failed"]),
  /** Why it was refused or failed (one line). */
  reason: z.string().optional(),
  /** Epoch of the leader that answered. */
  epoch: count.optional(),
  leader: z.string().optional(),
});
export type ScheduleOutcome = z.infer<typeof scheduleOutcomeSchema>;

/** The value of `/R/request/<id>`: written by `escheduler schedule`, answered by the leader in `outcome`. */
export const scheduleRequestRecordSchema = z.object({
  ...actorFields,
  allowRemoval: z.boolean(),
  /** A per-task action carried out by the schedule the request asks for (absent: a plain schedule). */
  action: taskActionSchema.optional(),
  /** RFC 3339 time of the request. */
  at: time,
  outcome: scheduleOutcomeSchema.optional(),
});
export type ScheduleRequestRecord = z.infer<typeof scheduleRequestRecordSchema>;

/** One task that changed owner in a schedule; `from`/`to` are absent for a task added or removed. */
export const historyMoveSchema = z.object({
  id: z.string(),
  from: z.string().optional(),
  to: z.string().optional(),
  /** Why it left its worker, when the escalation moved it (`failed on w2: <error>`). */
  why: z.string().optional(),
});
export type HistoryMove = z.infer<typeof historyMoveSchema>;

/** The value of `/R/history/<16-digit revision>`: one applied or refused schedule. */
export const historyRecordSchema = z.object({
  /** RFC 3339 time of the schedule's outcome. */
  at: time,
  leader: z.string(),
  epoch: count,
  outcome: z.enum(["applied", "refused"]),
  /** Why a schedule was refused. */
  refusal: z.string().optional(),
  /** What asked for the schedule (coalesced triggers). */
  reasons: z.array(z.string()),
  workers: z.array(z.string()),
  tasks: count,
  added: count,
  removed: count,
  moved: count,
  unassigned: count,
  /** Unassigned tasks per reason kind, and up to 20 of them with their reason. */
  unassignedReasons: unassignedReasonsSchema.optional(),
  unassignedTasks: z.array(unassignedTaskSchema).optional(),
  /** Up to 100 tasks that moved, were added or removed, with their from/to worker. */
  moves: z.array(historyMoveSchema),
  /** True when more tasks changed than `moves` lists. */
  movesTruncated: z.boolean().optional(),
});
export type HistoryRecord = z.infer<typeof historyRecordSchema>;

/**
 * The value of `/R/move/<taskId>`: a move begun (the task removed from `from`) and not finished; the
 * task's value `value` is written to `to` once `from` has stopped it. Written by the leader, fenced.
 */
export const moveRecordSchema = z.object({
  from: workerName,
  to: workerName,
  value: z.string(),
  priority: z.number().optional(),
});
export type BegunMove = z.infer<typeof moveRecordSchema>;

/** The value of `/R/worker_barrier_left` (plain text, not JSON): the time the first gathering completed. */
export const barrierLeftSchema = z.string().refine((text) => !Number.isNaN(Date.parse(text)), {
  message: "not an RFC 3339 time",
});

/** A task's balance group as `status` reads it from the task key (the rest of the task is the worker's to check). */
export const taskGroupSchema = z.object({ group: z.string().optional() });

export interface ReadRecordOptions<T> {
  /** The value is plain text, not JSON (the barrier marker). */
  text?: boolean;
  /** What to use instead of a bad record (e.g. "paused, reason unknown"); without it the record is skipped. */
  repair?: (raw: unknown) => T;
}

/**
 * The record stored under `key`, validated by `schema`; undefined when the key is absent. A bad value
 * (not JSON, or the wrong shape) is skipped, or replaced by `options.repair(raw)`, with one warning
 * naming the key: the same bad value read again warns no more.
 */
export function readRecord<T>(
  schema: z.ZodType<T>,
  key: string,
  value: string | Buffer | null | undefined,
  logger: Logger,
  options: ReadRecordOptions<T> = {},
): T | undefined {
  if (value === null || value === undefined) return undefined;
  const text = value.toString();
  let raw: unknown = text;
  let problem: string | undefined;
  if (!options.text) {
    try {
      raw = JSON.parse(text);
    } catch {
      problem = "not JSON";
    }
  }
  if (problem === undefined) {
    const parsed = schema.safeParse(raw);
    if (parsed.success) return parsed.data;
    problem = describeIssues(parsed.error.issues);
  }
  const repaired = options.repair?.(problem === "not JSON" ? undefined : raw);
  warnOnce(logger, key, text, {
    problem,
    action: repaired === undefined ? "skipped" : "repaired",
  });
  return repaired;
}

/**
 * False, with one warning naming the key, when `kv` has no lease although its key must carry one
 * (registrations, statuses, slots, election keys, draining marks, barrier waiters): such a key was
 * written by hand and is not trusted, or it would never go away by itself.
 */
export function hasLease(kv: { key: Buffer | string; lease?: string }, logger: Logger): boolean {
  if (kv.lease !== undefined && kv.lease !== "0" && kv.lease !== "") return true;
  warnOnce(logger, kv.key.toString(), "", {
    problem: "has no lease although this key must carry its writer's lease",
    action: "ignored",
  });
  return false;
}

/**
 * The key as text, or undefined (with one warning) when its bytes are not valid UTF-8: such a key
 * was not written by escheduler, and its text form names another key.
 */
export function keyText(key: Buffer | string, logger: Logger): string | undefined {
  // A key held as text was checked when it was stored (the master's view keeps UTF-8 keys as text).
  if (typeof key === "string") return key;
  const text = key.toString();
  if (!text.includes("\uFFFD") || Buffer.from(text).equals(key)) return text;
  warnOnce(logger, text, key.toString("hex"), {
    keyHex: key.toString("hex"),
    problem: "the key is not valid UTF-8",
    action: "ignored",
  });
  return undefined;
}

/** Distinct bad records remembered, so a record read on every refresh warns once (bounded memory). */
const MAX_REMEMBERED = 10_000;
const warned = new Set<string>();

function warnOnce(logger: Logger, key: string, value: string, fields: Record<string, unknown>): void {
  // A silent reader (a library default) must not use up the one warning a logging reader would give.
  if (!logger.isLevelEnabled("warn")) return;
  const fingerprint = `${key}\u0000${value.length}:${value.slice(0, 200)}`;
  if (warned.has(fingerprint)) return;
  if (warned.size >= MAX_REMEMBERED) warned.clear();
  warned.add(fingerprint);
  logger.warn({ key, ...fields }, "bad record in etcd");
}

function describeIssues(issues: ReadonlyArray<{ path: PropertyKey[]; message: string }>): string {
  const described = issues.slice(0, 3).map((issue) => {
    const path = issue.path.map(String).join(".");
    return path ? `${path}: ${issue.message}` : issue.message;
  });
  return described.join("; ") + (issues.length > 3 ? ` (and ${issues.length - 3} more)` : "");
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Parses a stored JSON value without checking its shape (the worker checks a task's value itself). */
export function parseRecord<T>(value: string | Buffer | null | undefined): T | undefined {
  if (value === null || value === undefined) return undefined;
  try {
    return JSON.parse(value.toString()) as T;
  } catch {
    return undefined;
  }
}
