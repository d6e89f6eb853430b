import { EschedulerError, firstLine } from "../errors.js";
import { type Logger, type Task, type TaskState, type TaskStatus } from "../node/index.js";
import {
  type Backoff,
  delay,
  exponentialBackoff,
  isoNow,
  SerialJob,
  settlesWithin,
} from "../runtime/index.js";
import { type AssignedTaskOptions, TaskStateKeeper } from "./assigned-task.js";
import type { RunningTask, TaskLauncher } from "./handler.js";
import { FailureWindow, restartLimitOf } from "./failure-window.js";
import { Incarnation } from "./incarnation.js";
import type { ClaimResult, LockHeld } from "./status-publisher.js";

/** A task state as the worker reports it; `stopped` means not running and no status key. */
export type TaskRunState = TaskState | "stopped";

export interface TaskStateChange {
  task: string;
  state: TaskRunState;
  attempt: number;
  error?: string;
}

/** What should run under one task id: a task, or a value that cannot be run (shown as `failed`). */
export type TaskSpec =
  | {
      task: Task;
      fingerprint: string;
      /** Mod revision of the task key this spec was read from: a start claims it (see `launch`). */
      revision: number;
    }
  | { problem: string; fingerprint: string };

export type RetryOptions = { initialMs: number; maxMs: number };

type FailureCounts = Pick<TaskStatus, "failures" | "exhausted">;

export interface TaskRunnerOptions extends AssignedTaskOptions {
  launcher: TaskLauncher;
  /** The worker's logger: the runner logs (and hands the handler) a child of it naming the task. */
  logger: Logger;
  stopTimeoutMs: number;
  retry: RetryOptions;
}

/**
 * The state machine of one task id: converges what runs to what is desired, one operation at a time
 * (start with retries and backoff, stop within a timeout, restart on change), reporting each state.
 */
export class TaskRunner extends TaskStateKeeper<TaskRunnerOptions> {
  private desired?: TaskSpec;
  private active?: Incarnation;
  private launching?: Incarnation;
  private attempts = 0;
  private retryAfterMs?: number;
  private sleeper?: AbortController;
  /** Reconciles one pass at a time; a change meanwhile causes one more pass. */
  private readonly passes: SerialJob;
  /** The spec whose start claim etcd refused: not started again until a newer spec arrives. */
  private refused?: TaskSpec;
  /** While another worker holds the task's run lock: ends the wait for that lock to change. */
  private lockWait?: AbortController;
  /** Set when another worker took the run lock while the task ran here: it stops, then waits as if refused. */
  private lost?: LockHeld;
  /** The lock's holder is another process of this name: the status key is its (its lock's witness), not written here. */
  private theirs = false;
  /** Made at the first failure; none means the next delay is the first. */
  private backoff?: Backoff;
  private childLogger?: Logger;
  /** Handler failures of the desired spec on this worker (the newest last), for the restart limit; made at the first. */
  private failures?: FailureWindow;

  constructor(options: TaskRunnerOptions) {
    super(options);
    this.passes = new SerialJob(
      async () => {
        await this.reconcile();
        await this.status.flushed();
      },
      {
        onError: (error) => this.taskLogger.error({ err: error }, "task runner failed"),
        onIdle: () => {
          if (this.settled) this.options.onSettled?.(this);
        },
      },
    );
  }

  /** The task's child logger, made when first needed (most tasks never log). */
  get taskLogger(): Logger {
    return (this.childLogger ??= this.options.logger.child({ task: this.taskId }));
  }

  get attempt(): number {
    return this.active?.attempt ?? this.launching?.attempt ?? this.attempts;
  }
  /** True while nothing is desired, nothing runs and no operation is pending. */
  get settled(): boolean {
    return !this.desired && !this.active && !this.launching && !this.passes.running;
  }

  /** Sets what should run (undefined: nothing); a different fingerprint restarts the task. */
  set(spec: TaskSpec | undefined): void {
    const previous = this.desired;
    this.desired = spec;
    if (previous?.fingerprint !== spec?.fingerprint) {
      this.attempts = 0;
      this.failures = undefined;
      this.backoff = undefined;
      this.retryAfterMs = undefined;
      this.sleeper?.abort();
      this.lockWait?.abort();
      this.lost = undefined;
      for (const incarnation of [this.launching, this.active]) {
        if (incarnation && incarnation.fingerprint !== spec?.fingerprint) {
          incarnation.abort(() => this.stopReason());
        }
      }
    }
    this.kick();
  }

  /** Another worker took the run lock while the task ran here (see `AssignedTask.lockLost`). */
  lockLost(holder: LockHeld): void {
    const incarnation = this.active ?? this.launching;
    if (!incarnation) return;
    this.lost = holder;
    this.theirs = holder.heldBy === this.options.worker;
    const reason = `task ${JSON.stringify(this.taskId)}: run lock taken by worker ${JSON.stringify(holder.heldBy)}`;
    incarnation.abort(() => new EschedulerError("ERR_RUN_LOCKED", reason));
    this.kick();
  }

  /** Resolves once the pending operations are done (including a stop that outlives its timeout). */
  async idle(): Promise<void> {
    await this.passes.idle();
  }

  private kick(): void {
    this.passes.request();
  }

  private async reconcile(): Promise<void> {
    for (;;) {
      const want = this.desired;
      const active = this.active;
      if (active) {
        if (active.failure !== undefined) {
          this.active = undefined;
          if (Date.now() - active.startedAt >= this.options.retry.maxMs) this.backoff = undefined;
          this.fail(active.attempt, active.failure, "task ended without being stopped");
        } else if (want?.fingerprint === active.fingerprint && !active.aborted) {
          return;
        } else {
          await this.stop(active);
        }
        continue;
      }
      if (!want) {
        if (this.current !== "stopped") this.clear();
        return;
      }
      if ("problem" in want) {
        if (this.current !== "failed" || this.currentError !== want.problem) {
          this.report("failed", this.attempts, want.problem);
        }
        return;
      }
      if (want === this.refused) return;
      if (this.lost) {
        this.blocked(this.attempts, this.lost);
        this.lost = undefined;
        continue;
      }
      if (this.retryAfterMs !== undefined) {
        const wait = this.retryAfterMs;
        this.retryAfterMs = undefined;
        await this.sleep(wait);
        continue;
      }
      await this.launch(want);
    }
  }

  /**
   * Starts a task after claiming it: `starting` is written only while the task key is still at the
   * revision this spec was read from. Once the master has deleted the key to hand the task off, the
   * claim fails and nothing starts; if the claim landed first, the master sees the status and waits.
   */
  private async launch(spec: Extract<TaskSpec, { task: Task }>): Promise<void> {
    const { task, fingerprint } = spec;
    const attempt = ++this.attempts;
    const incarnation = new Incarnation(fingerprint, attempt, Date.now(), this, this.options.worker);
    this.launching = incarnation;
    this.lockWait?.abort();
    this.lockWait = undefined;
    try {
      const claim = await this.claim(attempt, spec.revision);
      this.theirs = claim.heldBy === this.options.worker;
      if (!claim.claimed) {
        this.launching = undefined;
        if (claim.heldBy !== undefined) this.blocked(incarnation.attempt, claim);
        else {
          this.refused = spec;
          this.taskLogger.debug(
            { revision: spec.revision },
            "task key changed before the start was claimed; not starting",
          );
        }
        return;
      }
      if (incarnation.aborted) throw incarnation.signal().reason;
      const running = await this.options.launcher.launch(task, incarnation.ctx);
      incarnation.running = running;
      incarnation.startedAt = Date.now();
      this.active = incarnation;
      this.launching = undefined;
      // Removed while starting (perhaps re-added since): it is not running; the next pass stops it.
      if (incarnation.aborted) return;
      running.ended?.then((reason) => {
        // A run() that returns because it was asked to stop is not a failure.
        if (incarnation.stopping || incarnation.aborted) return;
        incarnation.failure = reason ?? new Error("task ended");
        this.kick();
      });
      this.report("running", attempt);
      if (this.options.logger.isLevelEnabled("debug")) this.taskLogger.debug({ attempt }, "task running");
    } catch (error) {
      this.launching = undefined;
      if (incarnation.aborted) {
        this.taskLogger.debug({ err: error }, "task start abandoned: no longer wanted");
        return;
      }
      this.fail(incarnation.attempt, error, "task start failed");
    }
  }

  /**
   * Reports a failed attempt and when to try again. A failure of the handler itself counts against the
   * task's restart limit: once reached, no restart until the window allows (the master moves it meanwhile).
   */
  private fail(
    attempt: number,
    error: unknown,
    message: string,
    level: "warn" | "info" = "warn",
    counts = true,
  ) {
    const window = counts ? (this.failures ??= new FailureWindow()) : undefined;
    const counted = window?.add(Date.now(), restartLimitOf(this.desired));
    this.backoff ??= exponentialBackoff(this.options.retry);
    this.retryAfterMs = counted?.exhausted ? counted.retryInMs : this.backoff.next();
    const { failures, exhausted } = counted ?? {};
    this.taskLogger[level](
      { err: error, attempt, retryInMs: this.retryAfterMs, failures, exhausted },
      message,
    );
    const status = counted && { failures: counted.failures, ...(exhausted ? { exhausted } : {}) };
    this.report("failed", attempt, firstLine(error) || "unknown error", status);
  }

  /**
   * Another worker holds the task's run lock (a second assignment of one task): shown as `failed`
   * with who holds it, and claimed again once the lock changes (or after the retry backoff).
   */
  private blocked(attempt: number, claim: LockHeld): void {
    const error = new EschedulerError(
      "ERR_RUN_LOCKED",
      `run lock held by worker ${JSON.stringify(claim.heldBy)}: the task runs there`,
    );
    this.fail(attempt, error, "task not started: another worker holds its run lock", "info", false);
    const wait = new AbortController();
    this.lockWait = wait;
    claim.released(wait.signal).then(
      () => {
        if (this.lockWait !== wait) return;
        this.lockWait = undefined;
        this.retryAfterMs = undefined;
        this.sleeper?.abort();
        this.kick();
      },
      () => {},
    );
  }

  private async stop(incarnation: Incarnation): Promise<void> {
    incarnation.stopping = true;
    const stoppingSince = Date.now();
    incarnation.abort(() => this.stopReason());
    const stopped = (incarnation.running as RunningTask).stop().catch((error: unknown) => {
      this.taskLogger.error({ err: error }, "task stop failed; treating the task as stopped");
    });
    // Going away with a stop that returns at once: no `stopping` write for the deletion to wait behind.
    const atOnce = await settlesWithin(stopped, 0);
    if (!this.desired && atOnce) this.changed("stopping");
    else this.report("stopping", incarnation.attempt);
    const { stopTimeoutMs } = this.options;
    if (!atOnce && !(await settlesWithin(stopped, stopTimeoutMs))) {
      this.taskLogger.error(
        { stopTimeoutMs },
        "task stop exceeded the stop timeout; status kept until it returns",
      );
      await stopped;
      this.taskLogger.warn({ tookMs: Date.now() - stoppingSince }, "late task stop returned");
    }
    this.active = undefined;
    // A replacement will report `starting` at once; only a task that is no longer wanted loses its key.
    if (!this.desired) this.clear();
  }

  private clear(): void {
    this.status.publish(undefined);
    this.changed("stopped");
  }

  /** Reports `starting`, stored only as a start claim on the task key's `revision`; resolves with its outcome. */
  private claim(attempt: number, revision: number): Promise<ClaimResult> {
    const stored = this.status.claim({ state: "starting", attempt, since: isoNow() }, revision);
    this.changed("starting");
    return stored;
  }

  /** Reports a state (its status is written unless the lock's holder is another process of this name). */
  private report(state: TaskState, attempt: number, error?: string, counts?: FailureCounts): void {
    if (!this.theirs) {
      const status: TaskStatus = { state, attempt, since: isoNow() };
      if (error !== undefined) status.error = error;
      if (counts) Object.assign(status, counts);
      this.status.publish(status);
    }
    this.changed(state, error);
  }

  private stopReason(): EschedulerError {
    return new EschedulerError("ERR_ABORTED", `task ${JSON.stringify(this.taskId)} is being stopped`);
  }

  private async sleep(ms: number): Promise<void> {
    const sleeper = new AbortController();
    this.sleeper = sleeper;
    await delay(ms, sleeper.signal).catch(() => {});
    if (this.sleeper === sleeper) this.sleeper = undefined;
  }
}
