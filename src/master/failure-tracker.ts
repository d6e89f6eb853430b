import type { Etcd3 } from "etcd3";
import type { EffectiveRestartPolicy } from "../balancer/index.js";
import {
  type FailureRecord,
  failureRecordSchema,
  type KeyLayout,
  type Logger,
  readRecord,
  taskStatusSchema,
} from "../node/index.js";
import { PrefixWatcher, type WatchChange } from "../watcher/index.js";
import type { FailureInputs } from "./escalation-input.js";
import { AutoCordon } from "./auto-cordon.js";
import { type EscalationTask, type EscalationTasks, newlyExhausted, recordFailure } from "./escalation.js";
import type { LeaderWriter } from "./fencing.js";
import { keptStatus, reportsFailures, reportsRunning, type StatusView } from "./status-source.js";

export interface FailureTrackerOptions {
  defaults: EffectiveRestartPolicy;
  logger: Logger;
  /** A task reached its restart limit on a worker, a record was reset, or an exclusion ended: schedule now. */
  onEscalation: (reason: "failure" | "reset" | "failure-window") => void;
  /**
   * The term's view of the status keys, already started by its hand-off gate: one watch of the
   * statuses per leader, not two (at 50,000 tasks every status event decoded twice starved the
   * leader). Absent: the tracker watches the statuses itself.
   */
  statuses?: StatusView;
  /** Cordon a worker once this many distinct tasks failed there that run elsewhere (0 or absent: never). */
  autoCordonAfter?: number;
}

/**
 * The leader's failure records: it watches the workers' status keys for handler failures, keeps
 * `/R/failure/<taskId>` (last error per worker, where the restart limit was reached) with fenced
 * writes, and tells the term when a schedule must act on them. Lives for one leadership term.
 */
export class FailureTracker implements FailureInputs {
  readonly defaults: EffectiveRestartPolicy;
  private readonly statuses: StatusView;
  /** Whether `statuses` is this tracker's own watch (started and closed here). */
  private readonly ownStatuses: boolean;
  private readonly failures: PrefixWatcher;
  private readonly known = new Map<string, FailureRecord>();
  /** The tasks of the last schedule; undefined before the first (failures seen meanwhile wait). */
  private tasks?: EscalationTasks;
  private waiting: WatchChange[] = [];
  /** Record deletions this leader made (a payload change): not an operator's reset. */
  private readonly ownDeletes = new Set<string>();
  private writes: Promise<unknown> = Promise.resolve();
  private windowTimer?: NodeJS.Timeout;
  private readonly autoCordon: AutoCordon;

  constructor(
    client: Etcd3,
    private readonly keys: KeyLayout,
    private readonly writer: LeaderWriter,
    private readonly options: FailureTrackerOptions,
  ) {
    this.defaults = options.defaults;
    this.ownStatuses = !options.statuses;
    this.statuses =
      options.statuses ??
      new PrefixWatcher(client, keys.statusPrefix, { logger: options.logger, storedValue: keptStatus });
    this.failures = new PrefixWatcher(client, keys.failuresPrefix, { logger: options.logger });
    this.autoCordon = new AutoCordon(client, keys, writer, options.autoCordonAfter ?? 0, options.logger);
  }

  async start(signal: AbortSignal): Promise<void> {
    const stored = await this.failures.start(signal);
    for (const [key, value] of stored) {
      const id = this.keys.parseFailure(key);
      const record =
        id === undefined ? undefined : readRecord(failureRecordSchema, key, value, this.options.logger);
      if (id !== undefined && record) this.known.set(id, record);
    }
    this.failures.on("change", (change) => {
      // Puts are this leader's own writes; a deletion is an operator's reset (or our own cleanup).
      if (change.type !== "delete") return;
      const id = this.keys.parseFailure(change.key);
      if (id === undefined) return;
      this.known.delete(id);
      if (this.ownDeletes.delete(id)) return;
      this.options.logger.info({ task: id }, "failure record reset");
      this.options.onEscalation("reset");
    });
    if (this.ownStatuses) await this.statuses.start(signal);
    // The current values, then every later change: read and subscribed in one go.
    for (const [key, value] of this.statuses.entries)
      this.onStatus({ type: "put", key, value, revision: 0, synthetic: true });
    this.statuses.on("change", (change) => this.onStatus(change));
  }

  /** FailureInputs: the records as this leader knows them. */
  records(): ReadonlyMap<string, FailureRecord> {
    return this.known;
  }

  /** FailureInputs: the tasks of a schedule; records about another value or a task gone are deleted. */
  observe(tasks: EscalationTasks, nextChange: number | undefined): void {
    this.tasks = tasks;
    const stale = [...this.known].filter(([id, record]) => tasks.get(id)?.fingerprint !== record.fingerprint);
    for (const [id] of stale) {
      this.known.delete(id);
      this.ownDeletes.add(id);
      this.write(id, undefined);
    }
    clearTimeout(this.windowTimer);
    if (nextChange !== undefined) {
      this.windowTimer = setTimeout(
        () => this.options.onEscalation("failure-window"),
        Math.max(0, nextChange - Date.now()) + 10,
      );
    }
    const waiting = this.waiting;
    this.waiting = [];
    for (const change of waiting) this.onStatus(change);
    // A new leader learns from its first schedule's tasks what the statuses it read at its start mean.
    this.autoCordon.check(this.known, tasks);
  }

  async close(): Promise<void> {
    clearTimeout(this.windowTimer);
    await Promise.all([this.ownStatuses ? this.statuses.close() : undefined, this.failures.close()]);
    await this.writes.catch(() => undefined);
  }

  private onStatus(change: WatchChange): void {
    if (this.autoCordon.enabled) this.followRunning(change);
    // Only a handler failure can escalate: a cheap text test before parsing any key or status.
    if (change.type !== "put" || !reportsFailures(change.value)) return;
    // A status without a lease was written by hand: no worker reported it, so it moves nothing. The view
    // publishes each revision's changes once it holds them, so this is the lease of this very write.
    if (!this.statuses.hasLease(change.key)) return;
    const parts = this.keys.parseStatus(change.key);
    if (!parts) return;
    if (!this.tasks) {
      this.waiting.push(change);
      return;
    }
    const task = this.tasks.get(parts.taskId);
    // Escalation off for this task: the worker restarts it in place, and nothing is written.
    if (!task || task.policy.limit === 0) return;
    const status = readRecord(taskStatusSchema, change.key, change.value, this.options.logger);
    if (!status) return;
    const before = this.known.get(parts.taskId);
    const after = recordFailure(before, task, parts.worker, status, Date.now());
    if (!after) return;
    this.known.set(parts.taskId, after);
    this.write(parts.taskId, after);
    this.autoCordon.check(this.known, this.tasks);
    if (newlyExhausted(before, after, parts.worker)) {
      this.options.logger.warn(
        { task: parts.taskId, worker: parts.worker, error: status.error, failures: status.failures },
        "task reached its restart limit on this worker; moving it",
      );
      this.options.onEscalation("failure");
    }
  }

  /**
   * For the automatic cordon: where the tasks with a failure record run. A task that starts on another
   * worker after failing here is what makes a worker suspect, so each such start is a moment to check.
   */
  private followRunning(change: WatchChange): void {
    const parts = this.keys.parseStatus(change.key);
    if (!parts || !this.known.has(parts.taskId)) return;
    const running = change.type === "put" && reportsRunning(change.value);
    this.autoCordon.follow(parts.taskId, parts.worker, running);
    if (running && this.tasks) this.autoCordon.check(this.known, this.tasks);
  }

  /** Writes (or deletes) a record, fenced, one write at a time so they land in order. */
  private write(id: string, record: FailureRecord | undefined): void {
    const key = this.keys.failure(id);
    const op = record
      ? ({ type: "put", key, value: JSON.stringify(record) } as const)
      : ({ type: "delete", key } as const);
    this.writes = this.writes
      .then(() => this.writer.commit([op]))
      .catch((error: unknown) => {
        this.options.logger.warn({ err: error, task: id }, "failure record write failed");
      });
  }
}
