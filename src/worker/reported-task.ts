import { EschedulerError } from "../errors.js";
import type { TaskStatus } from "../node/index.js";
import { isoNow } from "../runtime/index.js";
import { TaskStateKeeper } from "./assigned-task.js";
import type { LockHeld } from "./status-publisher.js";
import type { TaskRunState, TaskSpec } from "./task-runner.js";

/**
 * A task run by the worker's user (a worker without a handler), who reports its states. The same
 * rules as a handler's task: the first state of an assignment is a start claim against the task
 * key's revision, any state but `stopped` for a task not assigned here is refused, and the reports
 * of one task reach etcd one at a time, in the order they were made.
 */
export class ReportedTask extends TaskStateKeeper {
  private desired?: TaskSpec;
  /** The assignment whose start etcd accepted: later states of it are written without a claim. */
  private claimed?: TaskSpec;
  private attempts = 0;
  private pending = 0;
  private queue: Promise<void> = Promise.resolve();

  get attempt(): number {
    return this.attempts;
  }
  get settled(): boolean {
    return !this.desired && this.current === "stopped" && this.pending === 0;
  }

  set(spec: TaskSpec | undefined): void {
    this.desired = spec;
    if (this.settled) this.options.onSettled?.(this);
  }

  /** Another worker took the run lock: shown `failed` naming it; the next report claims again. */
  lockLost(holder: LockHeld): void {
    if (!this.claimed) return;
    this.claimed = undefined;
    const error = `run lock held by worker ${JSON.stringify(holder.heldBy)}: the task runs there`;
    // Held by another process of this name: the status key is its (its lock's witness), not written here.
    if (holder.heldBy !== this.options.worker)
      this.status.publish({
        state: "failed",
        attempt: this.attempts,
        since: isoNow(),
        error,
      });
    this.changed("failed", error);
  }

  async idle(): Promise<void> {
    await this.queue;
    await this.status.flushed();
  }

  /** Applies a state the user reports, after the ones reported before it; rejects with ERR_NOT_ASSIGNED when refused. */
  report(state: TaskRunState, error?: string): Promise<void> {
    this.pending++;
    const applied = this.queue.then(() => this.apply(state, error));
    this.queue = applied.then(
      () => this.done(),
      () => this.done(),
    );
    return applied;
  }

  private done(): void {
    this.pending--;
    if (this.settled) this.options.onSettled?.(this);
  }

  private async apply(state: TaskRunState, error?: string): Promise<void> {
    if (state === "stopped") {
      this.claimed = undefined;
      this.status.publish(undefined);
      this.changed("stopped");
      await this.status.flushed();
      return;
    }
    const spec = this.desired;
    if (!spec || !("task" in spec)) throw this.refusal("it is not assigned to this worker");
    if (state === "starting") this.attempts++;
    const status: TaskStatus = { state, attempt: this.attempts, since: isoNow() };
    if (error !== undefined) status.error = error;
    if (this.claimed === spec) {
      this.status.publish(status);
      this.changed(state, error);
      await this.status.flushed();
      return;
    }
    // The first state of an assignment claims it: stored only while the task key is still as seen
    // and no other worker holds the task's run lock.
    const claim = await this.status.claim(status, spec.revision);
    if (claim.heldBy !== undefined)
      throw this.refusal(
        `run lock held by worker ${JSON.stringify(claim.heldBy)}: the task runs there`,
        "ERR_RUN_LOCKED",
      );
    if (!claim.claimed)
      throw this.refusal("its task key changed before the start was claimed (the master moved it)");
    this.claimed = spec;
    this.changed(state, error);
  }

  private refusal(
    why: string,
    code: "ERR_NOT_ASSIGNED" | "ERR_RUN_LOCKED" = "ERR_NOT_ASSIGNED",
  ): EschedulerError {
    return new EschedulerError(
      code,
      `task ${JSON.stringify(this.taskId)} on worker ${JSON.stringify(this.options.worker)}: state refused, ${why}`,
    );
  }
}
