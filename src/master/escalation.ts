import { createHash } from "node:crypto";
import { type EffectiveRestartPolicy, effectiveRestartPolicy } from "../balancer/index.js";
import type { FailureRecord, TaskStatus, WorkerFailure } from "../node/index.js";
import type { ValidTask } from "./validation.js";

/**
 * The failure escalation as pure functions: a task restarts on its worker until it failed `limit`
 * times there within `window`; then it goes to a worker it has not exhausted; once it exhausted
 * `quarantineAfter` distinct workers it is quarantined until its record is reset or its value changes.
 */

/** The master's defaults: a limit of 0 turns the escalation off (restart on the same worker forever). */
export const NO_ESCALATION: EffectiveRestartPolicy = { limit: 0, window: 300_000, quarantineAfter: 0 };

/** The master's escalation settings (a task's `restart` overrides them); a limit of 0 turns it off. */
export interface RestartSettings {
  restartLimit: number;
  restartWindowMs: number;
  quarantineAfter: number;
  /** Cordon a worker once this many distinct tasks reached their limit there and run elsewhere (0: never). */
  autoCordonAfter: number;
}

export function restartDefaults(settings: RestartSettings): EffectiveRestartPolicy {
  return {
    limit: settings.restartLimit,
    window: settings.restartWindowMs,
    quarantineAfter: settings.quarantineAfter,
  };
}

/** A task as the escalation knows it: its policy and the identity of its value. */
export interface EscalationTask {
  policy: EffectiveRestartPolicy;
  /** Hash of the task's value without its restart policy: a new value starts a new record. */
  readonly fingerprint: string;
}

/** Task id → the task as the escalation knows it (looked up by id only). */
export interface EscalationTasks {
  get(id: string): EscalationTask | undefined;
}

/** The task with its effective policy written into its value (last, where the worker's fingerprint ignores it). */
export function withRestartPolicy(
  valid: ValidTask,
  defaults: EffectiveRestartPolicy,
): { valid: ValidTask; escalation: EscalationTask } {
  const policy = effectiveRestartPolicy(valid.task.restart, defaults);
  // Without a restart policy the validated value is already the bare task's JSON.
  if (valid.task.restart === undefined && policy.limit === 0)
    return { valid, escalation: plainEscalation(valid.value, defaults) };
  const { restart, ...task } = valid.task;
  const bare = restart === undefined ? valid.value : JSON.stringify(task);
  const escalation = new LazyFingerprint(policy, bare);
  const value =
    policy.limit === 0
      ? bare
      : JSON.stringify({ ...task, restart: { limit: policy.limit, window: policy.window } });
  return { valid: { task: valid.task, value, bytes: Buffer.byteLength(value) }, escalation };
}

/** The escalation's view of a task without a restart policy of its own (`withRestartPolicy` gives the same). */
export function plainEscalation(value: string, defaults: EffectiveRestartPolicy): EscalationTask {
  return new LazyFingerprint(defaults, value);
}

/**
 * The fingerprint is hashed when first read: only a task with a failure record is ever compared, so
 * a schedule of 50,000 tasks that never failed hashes none (it hashed each, every schedule). A class,
 * not an object literal with a getter: such a literal is a dictionary-mode object with a closure and
 * an accessor of its own, about 400 bytes a task (40 MB at 100,000 tasks, twice over while a schedule
 * builds the next generation); this is one small object.
 */
class LazyFingerprint implements EscalationTask {
  private hashed?: string;

  constructor(
    readonly policy: EffectiveRestartPolicy,
    private readonly bare: string,
  ) {}

  get fingerprint(): string {
    this.hashed ??= createHash("sha256").update(this.bare).digest("hex").slice(0, 32);
    return this.hashed;
  }
}

/** What the escalation decides for one task now. */
export interface EscalationDecision {
  /** Exhausted on `quarantineAfter` distinct workers: not assigned anywhere. */
  quarantined: boolean;
  /** Workers it must not go to (exhausted there within the window). */
  exclude: string[];
  /** Where it failed, as people read it: `failed on w2: <error>`. */
  failedOn: string[];
  /** When the earliest exclusion ends (ms since the epoch), if any. */
  nextChange?: number;
}

const NOTHING: EscalationDecision = { quarantined: false, exclude: [], failedOn: [] };

/** The decision for a task from its record (a record about another value counts as none). */
export function decide(
  record: FailureRecord | undefined,
  task: EscalationTask,
  now: number,
): EscalationDecision {
  if (!record || record.fingerprint !== task.fingerprint) return NOTHING;
  const { policy } = task;
  const exhausted = Object.entries(record.workers)
    .filter(([, entry]) => entry.exhaustedAt !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const failedOn = exhausted.map(([worker, entry]) => `failed on ${worker}: ${entry.error}`);
  const quarantined = policy.quarantineAfter > 0 && exhausted.length >= policy.quarantineAfter;
  const exclude: string[] = [];
  let nextChange: number | undefined;
  if (!quarantined) {
    for (const [worker, entry] of exhausted) {
      const ends = Date.parse(entry.exhaustedAt as string) + policy.window;
      if (!(ends > now)) continue;
      exclude.push(worker);
      nextChange = Math.min(nextChange ?? ends, ends);
    }
  }
  return { quarantined, exclude, failedOn, ...(nextChange === undefined ? {} : { nextChange }) };
}

/**
 * The record after a failure reported by `worker`'s status, or undefined when the status adds nothing
 * (not a handler failure, or already counted). The restart limit counts as reached when the worker says
 * so or its count of failures within the window reaches the policy's limit.
 */
export function recordFailure(
  record: FailureRecord | undefined,
  task: EscalationTask,
  worker: string,
  status: TaskStatus,
  now: number,
): FailureRecord | undefined {
  if (status.state !== "failed" || status.failures === undefined || status.failures < 1) return undefined;
  const current = record?.fingerprint === task.fingerprint ? record : undefined;
  const before = current?.workers[worker];
  if (before && before.at === status.since) return undefined;
  const { limit } = task.policy;
  const reached = status.exhausted === true || (limit > 0 && status.failures >= limit);
  const entry: WorkerFailure = {
    failures: status.failures,
    error: status.error ?? "unknown error",
    at: status.since,
  };
  const exhaustedAt = reached ? new Date(now).toISOString() : before?.exhaustedAt;
  if (exhaustedAt !== undefined) entry.exhaustedAt = exhaustedAt;
  return { fingerprint: task.fingerprint, workers: { ...current?.workers, [worker]: entry } };
}

/** True when `after` newly reached the limit on some worker (the moment to schedule at once). */
export function newlyExhausted(
  before: FailureRecord | undefined,
  after: FailureRecord,
  worker: string,
): boolean {
  const was = before?.fingerprint === after.fingerprint ? before.workers[worker]?.exhaustedAt : undefined;
  const now = after.workers[worker]?.exhaustedAt;
  return now !== undefined && now !== was;
}
