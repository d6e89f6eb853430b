import type { Etcd3 } from "etcd3";
import { readClusterView, shareReadiness } from "../readiness/index.js";
import { EschedulerError } from "../errors.js";
import { type KeyLayout, type LeaseSession, type Logger, revokeQuietly, type Task } from "../node/index.js";
import { settlesWithin, untilAborted } from "../runtime/index.js";
import { PrefixWatcher, type WatchChange, WatchGroup } from "../watcher/index.js";
import { describeTasks } from "./assigned-task.js";
import { markLeft } from "./drain.js";
import { passFirstStart } from "./first-start.js";
import type { TaskLauncher } from "./handler.js";
import { RegistrationWatch } from "./registration-watch.js";
import { ReportedTask } from "./reported-task.js";
import type { StatusSink } from "./status-publisher.js";
import { SessionStatus } from "./session-status.js";
import { LeaseSteadiness } from "./steadiness.js";
import { Suspension } from "./suspension.js";
import { WatchedPlan } from "./watched-plan.js";
import type { RetryOptions, TaskRunState } from "./task-runner.js";
import { taskSpec } from "./task-spec.js";
import { TaskTable } from "./task-table.js";
import type { SessionHost } from "./session-host.js";
import type { RemovalReason, WorkerTask } from "./types.js";

export type { SessionHost } from "./session-host.js";

const fenced = (lost: "lease" | "registration") => `${lost} lost: stopped every task`;

export interface WorkerSessionOptions {
  client: Etcd3;
  keys: KeyLayout;
  name: string;
  lease: LeaseSession;
  /** Runs the tasks; without one, the worker's user runs them and reports their states. */
  launcher?: TaskLauncher;
  logger: Logger;
  stopTimeoutMs: number;
  startRetry: RetryOptions;
  expectedWorkers: number;
  host: SessionHost;
  /** Where statuses go; default a `StatusWriter` under the lease. */
  status?: StatusSink;
  /** When the worker's leases were suspended, across its sessions (see `LeaseSteadiness`). */
  suspensions?: number[];
}

/**
 * One registration of a worker, living exactly as long as its lease: it owns the lease, the status
 * writer under it, the watches of its tasks and of the plan, the table of what is assigned and what
 * runs it, and the fencing that stops every task the moment the lease can no longer be trusted.
 */
export class WorkerSession {
  readonly lease: LeaseSession;
  private readonly status: StatusSink;
  private readonly sessionStatus?: SessionStatus;
  private readonly logger: Logger;
  /** Task id → the task the master assigned (its key's value and revision). */
  private readonly assigned = new Map<string, ReturnType<typeof taskSpec>>();
  /** Task id → what runs it (kept while it stops, after it is no longer assigned). */
  private readonly table: TaskTable;
  /** Set when the session no longer follows its assignment: the lease was lost, or the worker stops. */
  private ending?: RemovalReason;
  /** After a lease loss: resolves once every task has stopped. */
  private stoppedAfterLoss?: Promise<void>;
  private readonly suspension: Suspension;
  /** The plan as the session's watch shows it (set once `run` begins). */
  private watchedPlan?: WatchedPlan;

  constructor(private readonly options: WorkerSessionOptions) {
    this.lease = options.lease;
    this.logger = options.logger;
    this.sessionStatus = options.status ? undefined : new SessionStatus(options);
    this.status = options.status ?? (this.sessionStatus as SessionStatus);
    this.table = new TaskTable({ ...options, status: this.status });
    void this.lease.lost.then((reason) => this.fence(reason));
    this.suspension = new Suspension({
      ...options,
      status: this.sessionStatus,
      ended: () => this.ending !== undefined,
      stopAll: () => this.unassignAll("fenced", false),
      busy: (id) => (this.table.get(id)?.state ?? "stopped") !== "stopped",
      apply: (snapshot, revisionOf) => this.applySnapshot(snapshot, revisionOf),
    });
  }

  /** The tasks assigned now (and ones still stopping), with their states. */
  tasks(): WorkerTask[] {
    return describeTasks(this.assigned, this.table.runners);
  }

  get assignedTasks(): Task[] {
    return [...this.assigned.values()].flatMap((spec) => ("task" in spec ? [spec.task] : []));
  }

  /** Watches tasks, plan and registration, passes the first-start barrier, then holds until the session ends. */
  async run(stop: AbortSignal): Promise<void> {
    const { client, keys, name } = this.options;
    // Its registration gone or another's, this process no longer is the worker: the session ends.
    const onLost = (reason: Error, lost: "lease" | "registration") => {
      if (lost === "lease") this.lease.orphan();
      this.fence(reason, lost);
    };
    const { lease, logger } = this;
    // One read and one watch stream serve the registration, the tasks and the plan.
    const group = new WatchGroup(client, logger);
    const registration = new RegistrationWatch({ client, keys, name, lease, logger, onLost, group });
    const signal = AbortSignal.any([this.lease.signal, stop, registration.signal]);
    this.logger.info({ lease: this.lease.id }, "worker registered");
    this.suspension.setStatus("registered");
    const tasks = new PrefixWatcher(client, keys.workerTasksPrefix(name), { logger, group });
    this.watchedPlan = new WatchedPlan(client, keys, name, logger, group);
    const plan = this.watchedPlan.watcher;
    // A resync's synthetic put carries the view's revision; a start claims the key's own mod revision.
    tasks.on("change", (change) =>
      this.applyChange(change, tasks.modRevision(change.key) ?? change.revision),
    );
    tasks.on("resync", (event) => this.options.host.emit("resync", event));
    plan.on("change", () => this.options.host.changed());
    void this.sessionStatus?.auditLocks(signal, (id, holder) => this.table.get(id)?.lockLost(holder));
    new LeaseSteadiness(this.options).watch(signal);
    try {
      await registration.start(signal);
      await plan.start(signal);
      const snapshot = await tasks.start(signal);
      if (this.ending) return;
      this.applySnapshot(snapshot, (key) => tasks.modRevision(key) ?? tasks.revision);
      this.options.host.registered();
      await passFirstStart({
        client,
        keys,
        name,
        expectedWorkers: this.options.expectedWorkers,
        lease: this.lease,
        logger: this.logger,
        signal,
        setStatus: (status) => this.suspension.setStatus(status),
        carriesShare: () => this.carriesShare(),
        nextChange: () => this.options.host.nextChange(),
      });
      await untilAborted(signal);
    } catch (error) {
      if (!signal.aborted) {
        // Without its watch the worker cannot follow its assignment: end the session as if the lease were lost.
        this.logger.error({ err: error }, "worker session failed; registering again");
        this.lease.orphan();
        this.fence(error instanceof Error ? error : new Error(String(error)));
      }
    } finally {
      await Promise.all([tasks.close(), plan.close(), registration.close()]);
    }
  }

  /** Takes a fresh view of the assigned tasks: assigns what is there, unassigns what is not. */
  applySnapshot(snapshot: ReadonlyMap<string, string>, revisionOf: (key: string) => number): void {
    if (this.ending || !this.suspension.recordSnapshot(snapshot, revisionOf)) return;
    const present = new Set<string>();
    for (const [key, value] of snapshot) {
      const id = this.taskIdOf(key);
      if (id === undefined) continue;
      present.add(id);
      this.assign(id, value, revisionOf(key));
    }
    for (const id of this.assigned.keys()) if (!present.has(id)) this.unassign(id, "unassigned");
    this.options.host.changed();
  }

  /** Applies one change under `/R/task/<me>/` (`modRevision`: the key's, which a start claims). */
  applyChange(change: WatchChange, modRevision: number): void {
    if (this.ending || !this.suspension.recordChange(change, modRevision)) return;
    const id = this.taskIdOf(change.key);
    if (id === undefined) return;
    if (change.type === "put") this.assign(id, change.value, modRevision);
    else this.unassign(id, "unassigned");
    this.options.host.changed();
  }

  /** A state reported by the user of a worker without a handler (see `Worker.reportTaskState`). */
  report(taskId: string, state: TaskRunState, error?: string): Promise<void> {
    const task = this.table.get(taskId);
    if (task instanceof ReportedTask) return task.report(state, error);
    if (state === "stopped") return Promise.resolve();
    return Promise.reject(
      new EschedulerError(
        "ERR_NOT_ASSIGNED",
        `task ${JSON.stringify(taskId)} on worker ${JSON.stringify(this.options.name)}: state refused, it is not assigned to this worker`,
      ),
    );
  }

  /**
   * Self-fencing, every task stops now. Lease lost: without waiting on etcd (the statuses die with the
   * lease). Registration gone or another's (this process no longer is the worker): each status and
   * run lock goes as its stop returns, the lease kept until `retire`, so a second process of the name
   * waits for each stop. Idempotent; nothing happens once the worker stops.
   */
  fence(reason: Error, lost: "lease" | "registration" = "lease"): void {
    if (this.ending) return;
    const lostAt = Date.now();
    const count = this.unassignAll("fenced");
    this.logger.warn({ lease: this.lease.id, reason: reason.message, tasks: count }, fenced(lost));
    this.options.host.setStatus("lost");
    this.options.host.emit("lost", reason);
    this.stoppedAfterLoss = this.idle().then(() => {
      if (lost === "lease")
        this.options.host.emit("leaseLost", { reason, tasks: count, stoppedInMs: Date.now() - lostAt });
    });
  }

  /** After a loss: waits until every task has stopped, then revokes the lease so its keys go now (a new session registers). */
  async retire(): Promise<void> {
    if (!this.ending) this.fence(await this.lease.lost);
    await this.stoppedAfterLoss;
    if (this.lease.active) await this.lease.close();
    else await revokeQuietly(this.lease);
  }

  /** The worker stops: every task stops, then the lease is revoked, so the master moves them at once. */
  async close(): Promise<void> {
    if (!this.ending) {
      this.logger.info({ tasks: this.assigned.size }, "worker stopping: stopping every task");
      this.unassignAll("stopping");
    }
    await this.idle();
    // A stop, not a crash: the left mark (no lease) tells a leader with --reassign-delay not to hold the rest.
    await markLeft(this.options, this.lease);
    if (this.lease.active) await this.lease.close();
    else await revokeQuietly(this.lease);
  }

  /** Resolves once every task is idle; stops still going after the stop timeout are reported as overrunning. */
  async idle(): Promise<void> {
    const runners = [...this.table.runners.values()];
    const idle = Promise.all(runners.map((runner) => runner.idle()));
    const { stopTimeoutMs } = this.options;
    // Every stop began together, so one deadline serves them all (not a timer per task).
    if (await settlesWithin(idle, stopTimeoutMs)) return;
    const tasks = runners.filter((runner) => !runner.settled).map((runner) => runner.taskId);
    this.logger.warn(
      { tasks, stopTimeoutMs },
      "task stops overran the stop timeout; keeping their statuses and the lease until they return",
    );
    this.options.host.emit("stopOverrun", { tasks, stopTimeoutMs });
    await idle;
  }

  /** In the last plan, and every task assigned here running, judged as the readiness probe judges it. */
  async carriesShare(): Promise<boolean> {
    if (!this.allStoredRunning() || !this.inWatchedPlan()) return false;
    const { client, keys, name } = this.options;
    return shareReadiness(name, await readClusterView(client, keys, { worker: name })).ready;
  }

  /** Whether the last plan the session's watch saw names this worker (if not, the probe cannot say ready). */
  inWatchedPlan(): boolean {
    return this.watchedPlan?.namesWorker() ?? false;
  }

  /** Whether every assigned task's last stored status is `running` (if not, the probe cannot say ready). */
  allStoredRunning(): boolean {
    if (this.ending) return false;
    if (this.table.storedRunningCount < this.assigned.size) return false;
    for (const id of this.assigned.keys()) if (this.table.get(id)?.storedState !== "running") return false;
    return true;
  }

  private taskIdOf(key: string): string | undefined {
    const parts = this.options.keys.parseTask(key);
    if (parts?.worker === this.options.name) return parts.taskId;
    this.logger.warn({ key }, "ignoring a key under the worker's task prefix that is not a task key");
    return undefined;
  }

  private assign(id: string, value: string, revision: number): void {
    const previous = this.assigned.get(id);
    const spec = taskSpec(id, value, revision);
    this.assigned.set(id, spec);
    // Even a rewrite with the same value reaches the runner: nothing restarts, but a start must claim the new revision.
    this.table.runnerFor(id).set(spec);
    if (previous?.fingerprint === value) return;
    if ("problem" in spec) this.logger.error({ task: id }, spec.problem);
    if (!("task" in spec)) return;
    const before = previous && "task" in previous ? previous.task : undefined;
    const { host } = this.options;
    if (previous) {
      this.logger.info({ task: id }, "task changed");
      host.publish({ type: "changed", task: spec.task, previous: before });
      host.emit("changed", spec.task, before);
    } else {
      this.logger.info({ task: id }, "task added");
      host.publish({ type: "added", task: spec.task });
      host.emit("added", spec.task);
    }
  }

  private unassign(id: string, reason: RemovalReason): void {
    const previous = this.assigned.get(id);
    if (!previous) return;
    this.assigned.delete(id);
    this.table.get(id)?.set(undefined);
    // Fencing and shutdown remove every task at once: one summary line says so, not one per task.
    this.logger[reason === "unassigned" ? "info" : "debug"]({ task: id, reason }, "task removed");
    const { host } = this.options;
    const before = "task" in previous ? { previous: previous.task } : {};
    host.publish({ type: "removed", taskId: id, ...before, reason });
    host.emit("removed", id, reason);
  }

  private unassignAll(reason: RemovalReason, end = true): number {
    if (end) this.ending = reason;
    const count = this.assigned.size;
    for (const id of this.assigned.keys()) this.unassign(id, reason);
    return count;
  }
}
