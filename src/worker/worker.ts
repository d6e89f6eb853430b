import { EventEmitter } from "node:events";
import { hostname } from "node:os";
import type { Etcd3 } from "etcd3";
import { gatheringBarrier, type Readiness, readClusterView, workerReadiness } from "../barrier/index.js";
import { EschedulerError } from "../errors.js";
import {
  assertValidName,
  createEtcdClient,
  defaultNodeName,
  delay,
  type EtcdConnectionConfig,
  exponentialBackoff,
  keyLayout,
  type KeyLayout,
  LeaseSession,
  leaseMarginMs,
  type Logger,
  parseRecord,
  type PlanRecord,
  registerWhenAdmitted,
  settlesWithin,
  silentLogger,
  type Task,
  unlessAborted,
  untilAborted,
  type WorkerInfo,
} from "../node/index.js";
import { SafeEmitter } from "../runtime/emitter.js";
import { ChangeQueue, PrefixWatcher, type ResyncEvent, type WatchChange } from "../watcher/index.js";
import type { AssignedTask } from "./assigned-task.js";
import { loadHandler, type TaskHandler, type TaskLauncher } from "./handler.js";
import { ReportedTask } from "./reported-task.js";
import type { StatusSink } from "./status-publisher.js";
import { StatusWriter } from "./status-writer.js";
import {
  type RetryOptions,
  TaskRunner,
  type TaskRunState,
  type TaskSpec,
  type TaskStateChange,
} from "./task-runner.js";
import { taskSpec } from "./task-spec.js";

export type WorkerStatus = "new" | "registered" | "in_barrier" | "left_barrier" | "lost" | "dead";

export interface WorkerOptions extends Partial<EtcdConnectionConfig> {
  /** An etcd client to use (not closed by the worker); otherwise one is made from `etcd` and the TLS/auth fields. */
  client?: Etcd3;
  root: string;
  /** Default `<ip>-<pid>`. */
  name?: string;
  ttlMs: number;
  /** Workers the first gathering waits for; 0 skips the barrier. */
  expectedWorkers?: number;
  /** Most workers registered at once; 0 for no cap. */
  maxWorkers?: number;
  capacity?: number;
  /**
   * How long one task's stop may take before it is reported as overrunning (logged, `stopOverrun`);
   * default 30 s. The task's status, and so the lease, stays until its stop returns.
   */
  stopTimeoutMs?: number;
  /** Handler module path or value; without one, tasks are only delivered (`taskChanges()`), not run. */
  handler?: string | TaskHandler;
  logger?: Logger;
  version?: string;
  /** Backoff of a failing task start; default 1 s doubling to 1 min. */
  startRetry?: RetryOptions;
  /** Lease loss is assumed when keep-alives are unconfirmed for `ttl - margin`; default 30% of the TTL. */
  leaseMarginMs?: number;
}

/** A task the worker holds, and how it is doing. */
export interface WorkerTask {
  id: string;
  /** Undefined when the stored value is not a valid task (its state is then `failed`). */
  task?: Task;
  state: TaskRunState;
  attempt: number;
  error?: string;
}

/** Why a task is no longer the worker's: the master took it away, the lease was lost, or the worker stops. */
export type RemovalReason = "unassigned" | "fenced" | "stopping";

export type TaskChange =
  | { type: "added"; task: Task }
  | { type: "changed"; task: Task; previous?: Task }
  | { type: "removed"; taskId: string; previous?: Task; reason: RemovalReason };

export interface WorkerEvents {
  status: [WorkerStatus, WorkerStatus];
  added: [Task];
  changed: [Task, Task | undefined];
  removed: [string, RemovalReason];
  /** The lease is gone: every task is being stopped; the worker registers anew. */
  lost: [Error];
  /** Local readiness flipped: past the barrier, in the last plan, every assigned task running. */
  ready: [boolean];
  taskState: [TaskStateChange];
  resync: [ResyncEvent];
  /** After a lease loss, once every task has stopped. */
  leaseLost: [{ reason: Error; tasks: number; stoppedInMs: number }];
  /** Stops still running after the stop timeout: their statuses and the lease stay until they return. */
  stopOverrun: [{ tasks: string[]; stopTimeoutMs: number }];
  /** Registration refused for now (worker cap, or the name still held by an old lease). */
  registrationWaiting: [EschedulerError];
}

const DEFAULT_STOP_TIMEOUT_MS = 30_000;
const DEFAULT_START_RETRY: RetryOptions = { initialMs: 1_000, maxMs: 60_000 };

/**
 * A worker process's membership in the fleet: registers under a lease (respecting the cap), gathers
 * in the first barrier, runs the tasks assigned under `/R/task/<me>/` through the handler while
 * keeping `/R/status/<me>/` truthful, stops everything at once when its lease can no longer be
 * trusted, and leaves by revoking the lease.
 */
export class Worker extends SafeEmitter<WorkerEvents> {
  readonly name: string;
  readonly keys: KeyLayout;
  private readonly client: Etcd3;
  private readonly ownsClient: boolean;
  private readonly logger: Logger;
  private readonly stopTimeoutMs: number;
  private readonly stopController = new AbortController();
  private currentStatus: WorkerStatus = "new";
  private launcher?: TaskLauncher;
  private session?: LeaseSession;
  private statusWriter?: StatusWriter;
  /** The session whose tasks the watch feeds; cleared the moment it is fenced. */
  private feeding?: LeaseSession;
  private planWatcher?: PrefixWatcher;
  /** Task id → what the master assigned (in the current session). */
  private readonly assigned = new Map<string, TaskSpec>();
  /** Task id → what runs it: a TaskRunner (with a handler) or a ReportedTask (the user reports). */
  private readonly runners = new Map<string, AssignedTask>();
  private readonly subscribers = new Set<ChangeQueue<TaskChange>>();
  private waitingReason?: string;
  private isReady = false;
  private readyCheck?: Promise<void>;
  private readyCheckAgain = false;
  private readyCheckScheduled = false;
  private readonly progress = new EventEmitter<{ progress: [] }>();
  private starting?: Promise<void>;
  private lifecycle?: Promise<void>;
  private stopping?: Promise<void>;
  /** After a lease loss: resolves once every task of the lost session has stopped. */
  private fenced?: Promise<void>;

  constructor(private readonly options: WorkerOptions) {
    super();
    this.name = options.name ?? defaultNodeName();
    assertValidName("worker name", this.name);
    this.keys = keyLayout(options.root);
    this.stopTimeoutMs = options.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS;
    this.logger = (options.logger ?? silentLogger).child({ worker: this.name });
    this.listenerErrorLog = this.logger;
    if (options.client) {
      this.client = options.client;
      this.ownsClient = false;
    } else {
      if (!options.etcd?.length)
        throw new EschedulerError("ERR_CONFIG", "worker needs an etcd client or endpoints");
      this.client = createEtcdClient({ ...options, etcd: options.etcd });
      this.ownsClient = true;
    }
  }

  get status(): WorkerStatus {
    return this.currentStatus;
  }

  /** The tasks assigned now (and ones still stopping), with their states. */
  tasks(): WorkerTask[] {
    const stopping = [...this.runners.values()].filter((runner) => runner.state !== "stopped");
    const ids = new Set([...this.assigned.keys(), ...stopping.map((runner) => runner.taskId)]);
    return [...ids].sort().map((id) => {
      const spec = this.assigned.get(id);
      const runner = this.runners.get(id);
      const state = runner?.state ?? "stopped";
      const error = runner?.error;
      return {
        id,
        ...(spec && "task" in spec ? { task: spec.task } : {}),
        state,
        attempt: runner?.attempt ?? 0,
        ...(error === undefined ? {} : { error }),
      };
    });
  }

  /**
   * Loads the handler, registers (waiting for a slot while the worker cap is reached) and starts
   * watching its tasks; resolves once registered. The barrier and later re-registrations happen in
   * the background. Rejects when stopped first, or when the name stays held by another process.
   */
  start(): Promise<void> {
    this.starting ??= this.begin();
    return this.starting;
  }

  /**
   * Stops every task (in parallel), revokes the lease, closes. Idempotent. Resolves only once every
   * stop has returned: a stop overrunning the stop timeout emits `stopOverrun` and keeps the lease
   * (and its status) until it returns, so the task cannot start elsewhere meanwhile.
   */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  /** Every change to the assigned tasks, starting with the current ones as `added`; ends on stop. */
  taskChanges(): AsyncIterableIterator<TaskChange> {
    const queue = new ChangeQueue<TaskChange>((done) => this.subscribers.delete(done));
    for (const spec of this.assigned.values())
      if ("task" in spec) queue.push({ type: "added", task: spec.task });
    if (this.currentStatus === "dead") queue.end();
    else this.subscribers.add(queue);
    return queue;
  }

  /**
   * For a worker without a handler: records the state of a task its user runs (`stopped` deletes the
   * status). Reports of one task apply in order; the first state of an assignment claims the task
   * like a handler's start does. Rejects with ERR_NOT_ASSIGNED any state but `stopped` for a task
   * that is not assigned to this worker (or was moved before its claim landed).
   */
  async reportTaskState(taskId: string, state: TaskRunState, error?: string): Promise<void> {
    if (this.launcher)
      throw new EschedulerError("ERR_CONFIG", "reportTaskState is for workers without a handler");
    const task = this.runners.get(taskId);
    if (task instanceof ReportedTask) return task.report(state, error);
    if (state === "stopped") return;
    throw new EschedulerError(
      "ERR_NOT_ASSIGNED",
      `task ${JSON.stringify(taskId)} on worker ${JSON.stringify(this.name)}: state refused, it is not assigned to this worker`,
    );
  }

  /** Readiness as the barrier module evaluates it from etcd, plus what only this process knows. */
  async readiness(): Promise<Readiness> {
    const reasons: string[] = [];
    if (this.currentStatus === "new") reasons.push("worker not started");
    if (this.currentStatus === "dead") reasons.push("worker stopped");
    if (this.currentStatus === "lost") reasons.push("lease lost; registering again");
    if (this.waitingReason) reasons.push(`waiting for a registration slot: ${this.waitingReason}`);
    if (this.currentStatus === "dead") return { ready: false, reasons };
    const evaluated = workerReadiness(
      this.name,
      await readClusterView(this.client, this.keys, { worker: this.name }),
    );
    reasons.push(...evaluated.reasons.filter((reason) => !reasons.includes(reason)));
    return { ready: reasons.length === 0 && evaluated.ready, reasons };
  }

  private async begin(): Promise<void> {
    if (this.options.handler !== undefined) this.launcher = await loadHandler(this.options.handler);
    this.warnIfStopsOutlastMargin();
    const firstSession = await this.connect(false);
    const registered = new Promise<void>((resolve) => {
      this.resolveFirstRegistration = resolve;
    });
    this.lifecycle = this.live(firstSession);
    await unlessAborted(registered, this.stopController.signal);
  }

  private resolveFirstRegistration?: () => void;

  /** After a lease loss, stops have only the lease margin before the task may start elsewhere. */
  private warnIfStopsOutlastMargin(): void {
    const { ttlMs } = this.options;
    const marginMs = leaseMarginMs(ttlMs, this.options.leaseMarginMs);
    if (this.stopTimeoutMs <= marginMs) return;
    this.logger.warn(
      { stopTimeoutMs: this.stopTimeoutMs, leaseMarginMs: marginMs, ttlMs },
      "stop timeout exceeds the lease margin: after a lease loss a slow stop may still run when its task starts elsewhere; keep stops within the margin or raise the ttl",
    );
  }

  /** Runs one session after another until stopped: each ends when its lease is lost. */
  private async live(firstSession: LeaseSession): Promise<void> {
    let session: LeaseSession | undefined = firstSession;
    while (session) {
      await this.runSession(session);
      if (this.stopController.signal.aborted) return;
      await this.retireLostLease(session);
      session = await this.connect(true).catch((error: unknown) => {
        if (!this.stopController.signal.aborted)
          this.logger.error({ err: error }, "worker cannot register again");
        return undefined;
      });
    }
  }

  /** Grants a lease and registers under it, retrying transient failures; rejects only when stopped or the name stays held. */
  private async connect(again: boolean): Promise<LeaseSession> {
    const backoff = exponentialBackoff({ initialMs: 200, maxMs: 5_000 });
    const stop = this.stopController.signal;
    // A crashed predecessor with our name holds it until its lease expires, so wait about a TTL for
    // it; after a loss our own old registration may linger the same way, for as long as it takes.
    const nameWaitUntil = Date.now() + this.options.ttlMs + 1_000;
    const nameHeld = new AbortController();
    for (;;) {
      stop.throwIfAborted();
      let session: LeaseSession | undefined;
      try {
        session = await LeaseSession.grant(this.client, {
          ttlMs: this.options.ttlMs,
          marginMs: this.options.leaseMarginMs,
          logger: this.logger,
        });
        const granted = session;
        session.once("lost", (reason) => this.fence(granted, reason));
        await registerWhenAdmitted({
          client: this.client,
          keys: this.keys,
          session,
          info: this.info(),
          maxWorkers: this.options.maxWorkers ?? 0,
          signal: AbortSignal.any([stop, nameHeld.signal]),
          logger: this.logger,
          retryNameTaken: true,
          onWaiting: (reason) => {
            this.waitingReason = reason.message;
            this.emit("registrationWaiting", reason);
            if (!again && reason.code === "ERR_NAME_TAKEN" && Date.now() >= nameWaitUntil)
              nameHeld.abort(reason);
          },
        });
        this.waitingReason = undefined;
        return session;
      } catch (error) {
        await session?.close();
        if (stop.aborted) throw stop.reason;
        if (nameHeld.signal.aborted) throw nameHeld.signal.reason;
        const wait = backoff.next();
        this.logger.warn({ err: error, retryInMs: wait }, "worker registration failed; retrying");
        await delay(wait, stop);
      }
    }
  }

  /** One registration: watch tasks and the plan, pass the barrier, then hold until the lease is lost or the worker stops. */
  private async runSession(session: LeaseSession): Promise<void> {
    const stop = this.stopController.signal;
    const signal = AbortSignal.any([session.signal, stop]);
    this.session = session;
    this.statusWriter = new StatusWriter(this.client, this.keys, this.name, session, this.logger);
    this.feeding = session;
    this.logger.info({ lease: session.id }, "worker registered");
    this.setStatus("registered");
    const tasks = new PrefixWatcher(this.client, this.keys.workerTasksPrefix(this.name), {
      logger: this.logger,
    });
    const plan = new PrefixWatcher(this.client, this.keys.plan, { logger: this.logger });
    this.planWatcher = plan;
    tasks.on("change", (change) => {
      // A resync's synthetic put carries the view's revision; a start claims the key's own mod revision.
      if (this.feeding === session)
        this.applyTaskChange(change, tasks.modRevision(change.key) ?? change.revision);
    });
    tasks.on("resync", (event) => this.emit("resync", event));
    plan.on("change", () => this.checkReady());
    try {
      await plan.start(signal);
      const snapshot = await tasks.start(signal);
      if (this.feeding !== session) return;
      this.applySnapshot(snapshot, (key) => tasks.modRevision(key) ?? tasks.revision);
      this.resolveFirstRegistration?.();
      await this.passBarrier(session, signal);
      await untilAborted(signal);
    } catch (error) {
      if (!signal.aborted) {
        // Without its watch the worker cannot follow its assignment: end the session as if the lease were lost.
        this.logger.error({ err: error }, "worker session failed; registering again");
        session.orphan();
        this.fence(session, error instanceof Error ? error : new Error(String(error)));
      } else if (!stop.aborted) {
        // Lost before its first watch was up (fencing is idempotent).
        this.fence(session, new EschedulerError("ERR_LEASE_LOST", `lease ${session.id} lost`));
      }
    } finally {
      if (this.planWatcher === plan) this.planWatcher = undefined;
      await Promise.all([tasks.close(), plan.close()]);
    }
  }

  /** Passes the barrier, retrying after etcd failures: the tasks keep running meanwhile. */
  private async passBarrier(session: LeaseSession, signal: AbortSignal): Promise<void> {
    const backoff = exponentialBackoff({ initialMs: 200, maxMs: 5_000 });
    for (;;) {
      try {
        await this.gather(session, signal);
        return;
      } catch (error) {
        if (signal.aborted) throw error;
        const wait = backoff.next();
        this.logger.warn({ err: error, retryInMs: wait }, "barrier step failed; retrying");
        await delay(wait, signal);
      }
    }
  }

  /** First start of a fleet: gather with the others, run the first assignment, then leave together. */
  private async gather(session: LeaseSession, signal: AbortSignal): Promise<void> {
    const expected = this.options.expectedWorkers ?? 0;
    if (expected <= 0) {
      this.setStatus("left_barrier");
      return;
    }
    const barrier = gatheringBarrier({
      client: this.client,
      keys: this.keys,
      name: this.name,
      expectedWorkers: expected,
      session,
      logger: this.logger,
    });
    // The marker's watch answers both whether the fleet has already gathered and, later, whether the
    // master gave up waiting after its barrier timeout: stop waiting then too.
    const marker = new PrefixWatcher(this.client, this.keys.barrierLeft, { logger: this.logger });
    const markerSet = new AbortController();
    marker.on("change", (change) => {
      if (change.type === "put")
        markerSet.abort(new EschedulerError("ERR_ABORTED", "the fleet has gathered"));
    });
    try {
      if ((await marker.start(signal)).size > 0) {
        this.setStatus("left_barrier");
        return;
      }
      this.setStatus("in_barrier");
      await barrier.enter({ signal: AbortSignal.any([signal, markerSet.signal]) });
    } catch (error) {
      if (signal.aborted || !markerSet.signal.aborted) throw error;
      this.logger.info("the fleet gathered without this worker; skipping the barrier");
      this.setStatus("left_barrier");
      return;
    } finally {
      await marker.close();
    }
    this.logger.info("gathered; waiting to run the first assignment before leaving the barrier");
    await this.untilCarryingShare(signal);
    await barrier.leave({ signal });
    this.setStatus("left_barrier");
  }

  /** Resolves once the last plan includes this worker and every task assigned to it runs. */
  private async untilCarryingShare(signal: AbortSignal): Promise<void> {
    for (;;) {
      signal.throwIfAborted();
      const progressed = new Promise<void>((resolve) => this.progress.once("progress", resolve));
      if (await this.carriesShare()) return;
      await unlessAborted(progressed, signal);
    }
  }

  /** Included in the last plan, and every key under `/R/task/<me>/` (read after the plan) runs here. */
  private async carriesShare(): Promise<boolean> {
    const planValue = this.planWatcher?.entries.get(this.keys.plan);
    const plan = parseRecord<PlanRecord>(planValue);
    if (!plan?.workers?.includes(this.name)) return false;
    for (const id of this.assigned.keys()) if (this.stateOf(id) !== "running") return false;
    // The task watch may lag the plan watch: confirm against what etcd holds now.
    const stored = await this.client.getAll().prefix(this.keys.workerTasksPrefix(this.name)).keys();
    return stored.every((key) => {
      const id = this.keys.parseTask(key)?.taskId;
      return id !== undefined && this.stateOf(id) === "running";
    });
  }

  /** The state etcd holds for a task (readiness is judged on what others can see). */
  private stateOf(taskId: string): TaskRunState | undefined {
    return this.runners.get(taskId)?.storedState;
  }

  /** Re-evaluates local readiness and wakes the barrier wait, once per turn of the event loop however many tasks changed. */
  private checkReady(): void {
    if (this.readyCheckScheduled) return;
    this.readyCheckScheduled = true;
    setImmediate(() => {
      this.readyCheckScheduled = false;
      this.evaluateReady();
    });
  }

  /** At most one evaluation in flight; a change meanwhile causes one more. */
  private evaluateReady(): void {
    this.progress.emit("progress");
    if (this.readyCheck) {
      this.readyCheckAgain = true;
      return;
    }
    this.readyCheck = (async () => {
      do {
        this.readyCheckAgain = false;
        const ready =
          this.currentStatus === "left_barrier" && (await this.carriesShare().catch(() => this.isReady));
        if (ready !== this.isReady && !this.readyCheckAgain) {
          this.isReady = ready;
          this.emit("ready", ready);
        }
      } while (this.readyCheckAgain);
    })().finally(() => {
      this.readyCheck = undefined;
    });
  }

  private applySnapshot(snapshot: ReadonlyMap<string, string>, revisionOf: (key: string) => number): void {
    const present = new Set<string>();
    for (const [key, value] of snapshot) {
      const id = this.taskIdOf(key);
      if (id === undefined) continue;
      present.add(id);
      this.assign(id, value, revisionOf(key));
    }
    for (const id of this.assigned.keys()) if (!present.has(id)) this.unassign(id, "unassigned");
    this.checkReady();
  }

  private applyTaskChange(change: WatchChange, modRevision: number): void {
    const id = this.taskIdOf(change.key);
    if (id === undefined) return;
    if (change.type === "put") this.assign(id, change.value, modRevision);
    else this.unassign(id, "unassigned");
    this.checkReady();
  }

  private taskIdOf(key: string): string | undefined {
    const parts = this.keys.parseTask(key);
    if (parts?.worker === this.name) return parts.taskId;
    this.logger.warn({ key }, "ignoring a key under the worker's task prefix that is not a task key");
    return undefined;
  }

  private assign(id: string, value: string, revision: number): void {
    const previous = this.assigned.get(id);
    const spec = taskSpec(id, value, revision);
    this.assigned.set(id, spec);
    // Even a rewrite with the same value reaches the runner: nothing restarts, but a start must claim the new revision.
    this.runnerFor(id).set(spec);
    if (previous?.fingerprint === value) return;
    if ("problem" in spec) this.logger.error({ task: id }, spec.problem);
    if (!("task" in spec)) return;
    const before = previous && "task" in previous ? previous.task : undefined;
    if (previous) {
      this.logger.info({ task: id }, "task changed");
      this.publish({ type: "changed", task: spec.task, previous: before });
      this.emit("changed", spec.task, before);
    } else {
      this.logger.info({ task: id }, "task added");
      this.publish({ type: "added", task: spec.task });
      this.emit("added", spec.task);
    }
  }

  private unassign(id: string, reason: RemovalReason): void {
    const previous = this.assigned.get(id);
    if (!previous) return;
    this.assigned.delete(id);
    this.runners.get(id)?.set(undefined);
    // Fencing and shutdown remove every task at once: one summary line says so, not one per task.
    this.logger[reason === "unassigned" ? "info" : "debug"]({ task: id, reason }, "task removed");
    this.publish({
      type: "removed",
      taskId: id,
      ...("task" in previous ? { previous: previous.task } : {}),
      reason,
    });
    this.emit("removed", id, reason);
  }

  private unassignAll(reason: RemovalReason): void {
    for (const id of this.assigned.keys()) this.unassign(id, reason);
  }

  private runnerFor(id: string): AssignedTask {
    let runner = this.runners.get(id);
    if (!runner) {
      const common = {
        taskId: id,
        worker: this.name,
        status: this.statusSink,
        onState: (change: TaskStateChange) => this.emit("taskState", change),
        onStored: () => this.checkReady(),
        onSettled: () => {
          if (this.runners.get(id) === created && created.settled) this.runners.delete(id);
        },
      };
      const created: AssignedTask = this.launcher
        ? new TaskRunner({
            ...common,
            launcher: this.launcher,
            logger: this.logger.child({ task: id }),
            stopTimeoutMs: this.stopTimeoutMs,
            retry: this.options.startRetry ?? DEFAULT_START_RETRY,
          })
        : new ReportedTask(common);
      runner = created;
      this.runners.set(id, runner);
    }
    return runner;
  }

  /**
   * Self-fencing: the lease can no longer be trusted, so every task stops now, without waiting on
   * etcd (the status keys die with the lease); then the worker registers anew.
   */
  private fence(session: LeaseSession, reason: Error): void {
    if (this.feeding !== session || this.stopController.signal.aborted) return;
    const lostAt = Date.now();
    this.feeding = undefined;
    const count = this.assigned.size;
    this.unassignAll("fenced");
    this.logger.warn(
      { lease: session.id, reason: reason.message, tasks: count },
      "lease lost: stopped every task",
    );
    this.setStatus("lost");
    this.emit("lost", reason);
    this.fenced = this.allTasksIdle().then(() => {
      this.emit("leaseLost", { reason, tasks: count, stoppedInMs: Date.now() - lostAt });
    });
  }

  /** After a loss: wait until every task has stopped, then revoke the old lease (if etcd still has it) so its keys go now. */
  private async retireLostLease(session: LeaseSession): Promise<void> {
    await this.fenced;
    await revokeQuietly(session);
  }

  /** Resolves once every runner is idle; stops still going after the stop timeout are reported as overrunning. */
  private async allTasksIdle(): Promise<void> {
    const runners = [...this.runners.values()];
    const idle = Promise.all(runners.map((runner) => runner.idle()));
    // Every stop began together, so one deadline serves them all (not a timer per task).
    if (await settlesWithin(idle, this.stopTimeoutMs)) return;
    const tasks = runners.filter((runner) => !runner.settled).map((runner) => runner.taskId);
    this.logger.warn(
      { tasks, stopTimeoutMs: this.stopTimeoutMs },
      "task stops overran the stop timeout; keeping their statuses and the lease until they return",
    );
    this.emit("stopOverrun", { tasks, stopTimeoutMs: this.stopTimeoutMs });
    await idle;
  }

  private async shutdown(): Promise<void> {
    this.stopController.abort(new EschedulerError("ERR_ABORTED", `worker ${this.name} is stopping`));
    await this.starting?.catch(() => undefined);
    await this.lifecycle;
    this.feeding = undefined;
    this.logger.info({ tasks: this.assigned.size }, "worker stopping: stopping every task");
    this.unassignAll("stopping");
    await this.allTasksIdle();
    // Revoking deletes the worker key and every status key at once, so the master reschedules now.
    if (this.session?.active) await this.session.close();
    else if (this.session) await revokeQuietly(this.session);
    this.session = undefined;
    for (const queue of this.subscribers) queue.end();
    this.subscribers.clear();
    if (this.ownsClient) this.client.close();
    this.setStatus("dead");
    this.logger.info("worker stopped");
  }

  /** Status writes go under the current lease; with no live lease they are skipped (the keys died with it). */
  private readonly statusSink: StatusSink = {
    put: (taskId, status) => this.statusWriter?.put(taskId, status) ?? Promise.resolve(),
    remove: (taskId) => this.statusWriter?.remove(taskId) ?? Promise.resolve(),
    claim: (taskId, status, taskRevision) =>
      this.statusWriter?.claim(taskId, status, taskRevision) ?? Promise.resolve(false),
  };

  private info(): WorkerInfo {
    return {
      name: this.name,
      host: hostname(),
      pid: process.pid,
      version: this.options.version ?? "unknown",
      startedAt: new Date().toISOString(),
      ...(this.options.capacity === undefined ? {} : { capacity: this.options.capacity }),
    };
  }

  private setStatus(status: WorkerStatus): void {
    const previous = this.currentStatus;
    if (previous === status) return;
    this.currentStatus = status;
    this.logger.info({ status, previous }, "worker status");
    this.emit("status", status, previous);
    this.checkReady();
  }

  private publish(change: TaskChange): void {
    for (const queue of this.subscribers) queue.push(change);
  }
}

/** Revokes a lease that is no longer kept alive, in case etcd still holds it (its keys then go at once). */
async function revokeQuietly(session: LeaseSession): Promise<void> {
  await session.lease.revoke({ deadline: Date.now() + 1_000 }).catch(() => undefined);
}
