import { EventEmitter } from "node:events";
import type { Etcd3 } from "etcd3";
import { type Readiness, readClusterView, WorkerReadyCheck, workerReadiness } from "../readiness/index.js";
import { EschedulerError } from "../errors.js";
import {
  assertValidName,
  DEFAULTS,
  EtcdWaitLog,
  isPermanentEtcdError,
  nodeClient,
  defaultNodeName,
  keyLayout,
  type KeyLayout,
  LeaseSession,
  leaseMarginMs,
  type Logger,
  NameHolderCheck,
  NameTakenError,
  registerWhenAdmitted,
  nodeLogger,
} from "../node/index.js";
import { delay, exponentialBackoff, SafeEmitter, SerialJob, unlessAborted } from "../runtime/index.js";
import { ChangeQueue } from "../watcher/index.js";
import { drainTasks } from "./drain.js";
import { type RegistrationFields, registrationFields, registrationInfo } from "./registration-fields.js";
import { loadHandler, type TaskLauncher } from "./handler.js";
import type { RetryOptions, TaskRunState } from "./task-runner.js";
import type { TaskChange, WorkerEvents, WorkerOptions, WorkerStatus, WorkerTask } from "./types.js";
import { type SessionHost, WorkerSession } from "./worker-session.js";

const DEFAULT_START_RETRY: RetryOptions = { initialMs: 1_000, maxMs: 60_000 };
/** A lease the worker's registration is under. */
type Registered = { lease: LeaseSession };

/**
 * A worker process's membership in the fleet. It supervises one `WorkerSession` after another —
 * each a registration under its own lease that runs the tasks assigned under `/R/task/<me>/` and
 * keeps `/R/status/<me>/` truthful — registering anew after a lease loss, until it is stopped.
 */
export class Worker extends SafeEmitter<WorkerEvents> {
  readonly name: string;
  readonly keys: KeyLayout;
  private readonly options: WorkerOptions & { root: string; ttlMs: number };
  private readonly client: Etcd3;
  private readonly ownsClient: boolean;
  private readonly logger: Logger;
  private readonly stopTimeoutMs: number;
  /** Capacity, labels and rollout generation, as registered. */
  private readonly fields: RegistrationFields;
  private readonly stopController = new AbortController();
  private currentStatus: WorkerStatus = "new";
  private launcher?: TaskLauncher;
  /** The current registration, or the last one while the next is being made. */
  private session?: WorkerSession;
  /** When its leases were suspended, kept across sessions: a worker that flaps into a lost lease keeps count. */
  private readonly suspensions: number[] = [];
  private readonly subscribers = new Set<ChangeQueue<TaskChange>>();
  private waitingReason?: string;
  private isReady = false;
  /** One readiness evaluation at a time; a change meanwhile causes one more. */
  private readonly readyCheck = new SerialJob(() => this.evaluateReady(), {
    onError: (error) => this.logger.warn({ err: error }, "readiness check failed"),
  });
  private readyCheckScheduled = false;
  private readonly readyRead: WorkerReadyCheck;
  private readonly progress = new EventEmitter<{ progress: [] }>();
  private resolveFirstRegistration?: () => void;
  private starting?: Promise<void>;
  private lifecycle?: Promise<void>;
  private stopping?: Promise<void>;

  constructor(options: WorkerOptions) {
    super();
    this.options = {
      ...options,
      root: options.root ?? DEFAULTS.root,
      ttlMs: options.ttlMs ?? DEFAULTS.ttlMs,
    };
    this.name = options.name ?? defaultNodeName();
    assertValidName("worker name", this.name);
    this.fields = registrationFields(options, this.name);
    this.keys = keyLayout(this.options.root);
    this.stopTimeoutMs = options.stopTimeoutMs ?? DEFAULTS.stopTimeoutMs;
    this.logger = nodeLogger(options.logger, "worker", this.name);
    this.listenerErrorLog = this.logger;
    ({ client: this.client, owned: this.ownsClient } = nodeClient("worker", options));
    this.readyRead = new WorkerReadyCheck(this.client, this.keys, this.name);
    // A first `ready` listener gets readiness judged now (it was not while nobody listened).
    (this as EventEmitter).on("newListener", (event) => {
      if (event === "ready") this.checkReady();
    });
  }

  get status(): WorkerStatus {
    return this.currentStatus;
  }

  /** The tasks assigned now (and ones still stopping), with their states. */
  tasks(): WorkerTask[] {
    return this.session?.tasks() ?? [];
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

  /** Leaves without a gap (SIGTERM): hands every task off while keeping the lease, then stops as `stop()` does. */
  drain(): Promise<void> {
    const { client, keys, name, logger, session, stopTimeoutMs } = this;
    const target = { client, keys, name, logger, session, changed: this.sessionHost.nextChange };
    const limits = { stopTimeoutMs, ttlMs: this.options.ttlMs };
    this.stopping ??= drainTasks(target, limits).then(() => this.shutdown());
    return this.stopping;
  }

  /** Every change to the assigned tasks, starting with the current ones as `added`; ends on stop. */
  taskChanges(): AsyncIterableIterator<TaskChange> {
    const queue = new ChangeQueue<TaskChange>((done) => this.subscribers.delete(done));
    for (const task of this.session?.assignedTasks ?? []) queue.push({ type: "added", task });
    if (this.currentStatus === "dead") queue.end();
    else this.subscribers.add(queue);
    return queue;
  }

  /**
   * For a worker without a handler: records the state of a task its user runs (`stopped` deletes the
   * status). Reports of one task apply in order; the first state of an assignment claims the task
   * like a handler's start does. Rejects with ERR_NOT_ASSIGNED any state but `stopped` for a task
   * that is not assigned to this worker (or was moved before its claim landed), and with
   * ERR_RUN_LOCKED a first state while another worker holds the task's run lock (`/R/run/<id>`).
   */
  async reportTaskState(taskId: string, state: TaskRunState, error?: string): Promise<void> {
    if (this.launcher)
      throw new EschedulerError("ERR_CONFIG", "reportTaskState is for workers without a handler");
    if (this.session) return this.session.report(taskId, state, error);
    if (state === "stopped") return;
    throw new EschedulerError(
      "ERR_NOT_ASSIGNED",
      `task ${JSON.stringify(taskId)}: the worker is not registered`,
    );
  }

  /** Readiness as the readiness module evaluates it from etcd, plus what only this process knows. */
  async readiness(): Promise<Readiness> {
    const reasons: string[] = [];
    if (this.currentStatus === "new") reasons.push("worker not started");
    if (this.currentStatus === "dead") reasons.push("worker stopped");
    if (this.currentStatus === "lost") reasons.push("lease or registration lost; registering again");
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
    const first = await this.connect(false);
    const registered = new Promise<void>((resolve) => {
      this.resolveFirstRegistration = resolve;
    });
    this.lifecycle = this.live(first);
    await unlessAborted(registered, this.stopController.signal);
  }

  /**
   * After a lease loss, stops have only the lease margin before the task may start elsewhere: a stop
   * timeout set above it says the stops may take longer. The default only bounds a drain: no warning.
   */
  private warnIfStopsOutlastMargin(): void {
    const { ttlMs } = this.options;
    if (this.options.stopTimeoutMs === undefined) return;
    const marginMs = leaseMarginMs(ttlMs, this.options.leaseMarginMs);
    if (this.stopTimeoutMs <= marginMs) return;
    this.logger.warn(
      { stopTimeoutMs: this.stopTimeoutMs, leaseMarginMs: marginMs, ttlMs },
      "stop timeout exceeds the lease margin: after a lease loss a slow stop may still run when its task starts elsewhere; keep stops within the margin or raise the ttl",
    );
  }

  /** Runs one session after another until stopped: each ends when its lease is lost. */
  private async live(first: Registered): Promise<void> {
    let registered: Registered | undefined = first;
    while (registered) {
      const session = this.openSession(registered);
      await session.run(this.stopController.signal);
      if (this.stopController.signal.aborted) return;
      await session.retire();
      registered = await this.connect(true).catch((error: unknown) => {
        if (!this.stopController.signal.aborted)
          this.logger.error({ err: error }, "worker cannot register again");
        return undefined;
      });
    }
  }

  private openSession({ lease }: Registered): WorkerSession {
    this.session = new WorkerSession({
      client: this.client,
      keys: this.keys,
      name: this.name,
      lease,
      launcher: this.launcher,
      logger: this.logger,
      stopTimeoutMs: this.stopTimeoutMs,
      startRetry: this.options.startRetry ?? DEFAULT_START_RETRY,
      expectedWorkers: this.options.expectedWorkers ?? 0,
      host: this.sessionHost,
      suspensions: this.suspensions,
    });
    return this.session;
  }

  private readonly sessionHost: SessionHost = {
    emit: this.emit.bind(this) as SessionHost["emit"],
    publish: (change) => {
      for (const queue of this.subscribers) queue.push(change);
    },
    setStatus: (status) => this.setStatus(status),
    status: () => this.currentStatus,
    changed: () => this.checkReady(),
    nextChange: () => new Promise<void>((resolve) => this.progress.once("progress", resolve)),
    registered: () => this.resolveFirstRegistration?.(),
  };

  /** Grants a lease and registers under it, retrying failures; rejects when stopped, the name stays held, or etcd refuses us at start-up. */
  private async connect(again: boolean): Promise<Registered> {
    const backoff = exponentialBackoff({ initialMs: 200, maxMs: 5_000 });
    const stop = this.stopController.signal;
    // A crashed predecessor with our name holds it until etcd expires its lease (later without an etcd
    // leader): give up only once the holder is seen alive; after a loss our own old registration lingers.
    const holder = new NameHolderCheck(this.client);
    const nameHeld = new AbortController();
    const waitLog = new EtcdWaitLog(this.logger, again ? "register again" : "register");
    for (;;) {
      stop.throwIfAborted();
      let lease: LeaseSession | undefined;
      try {
        lease = await LeaseSession.grant(this.client, {
          ttlMs: this.options.ttlMs,
          marginMs: this.options.leaseMarginMs,
          // A slow moment of etcd fences the tasks but keeps the registration if the lease lives on.
          resumable: true,
          logger: this.logger,
        });
        lease.on("keepalive", (sentAt) =>
          this.emit("keepalive", { roundTripMs: performance.now() - sentAt }),
        );
        await registerWhenAdmitted({
          client: this.client,
          keys: this.keys,
          session: lease,
          info: registrationInfo(this.name, this.options.version, this.fields),
          maxWorkers: this.options.maxWorkers ?? 0,
          signal: AbortSignal.any([stop, nameHeld.signal]),
          logger: this.logger,
          retryNameTaken: true,
          onWaiting: (reason) => {
            this.waitingReason = reason.message;
            this.emit("registrationWaiting", reason);
            if (!again && reason instanceof NameTakenError)
              void holder.alive(reason.holderLease).then((alive) => alive && nameHeld.abort(reason));
          },
        });
        this.waitingReason = undefined;
        waitLog.over();
        return { lease };
      } catch (error) {
        await lease?.close();
        if (stop.aborted) throw stop.reason;
        if (nameHeld.signal.aborted) throw nameHeld.signal.reason;
        // At start-up, credentials, permissions or TLS refused end start() (exit 2); the rest is waited out.
        if (!again && isPermanentEtcdError(error)) throw error;
        waitLog.failed(error);
        await delay(backoff.next(), stop);
      }
    }
  }

  /** Re-evaluates local readiness and wakes the barrier wait, once per turn of the event loop however many tasks changed. */
  private checkReady(): void {
    if (this.readyCheckScheduled) return;
    this.readyCheckScheduled = true;
    setImmediate(() => {
      this.readyCheckScheduled = false;
      this.progress.emit("progress");
      // Judged from etcd only for listeners: unheard, a read after every start only loads etcd and the claims.
      if (this.listenerCount("ready") > 0) this.readyCheck.request();
    });
  }

  private async evaluateReady(): Promise<void> {
    // As `readiness()` judges it, reading etcd only when what this process sees allows ready: every
    // task stored running and, as the session's watch shows it, in the last plan (whose change re-checks).
    const ready =
      this.currentStatus === "left_barrier" &&
      !this.waitingReason &&
      this.session?.allStoredRunning() === true &&
      this.session.inWatchedPlan() &&
      (await this.readyRead.ready(true).catch(() => this.isReady));
    // A newer evaluation is due: this one's answer may already be stale.
    if (ready === this.isReady || this.readyCheck.requestedAgain) return;
    this.isReady = ready;
    this.emit("ready", ready);
  }

  private async shutdown(): Promise<void> {
    this.stopController.abort(new EschedulerError("ERR_ABORTED", `worker ${this.name} is stopping`));
    await this.starting?.catch(() => undefined);
    await this.lifecycle;
    // Revoking deletes the worker key and every status key at once, so the master reschedules now.
    await this.session?.close();
    for (const queue of this.subscribers) queue.end();
    this.subscribers.clear();
    if (this.ownsClient) this.client.close();
    this.setStatus("dead");
    this.logger.info("worker stopped");
  }

  private setStatus(status: WorkerStatus): void {
    const previous = this.currentStatus;
    if (previous === status) return;
    this.currentStatus = status;
    this.logger.info({ status, previous }, "worker status");
    this.emit("status", status, previous);
    this.checkReady();
  }
}
