import type { TaskStatus } from "../../../src/node/index.js";
import {
  CLAIMED,
  type ClaimResult,
  NOT_CLAIMED,
  type StatusSink,
} from "../../../src/worker/status-publisher.js";

/** Status keys kept in memory: the runner's view of `/R/status/<me>/`. */
export class MemoryStatus implements StatusSink {
  readonly history: string[] = [];
  readonly current = new Map<string, TaskStatus>();
  /** While set, writes of this state wait for its promise (a status flush that takes a while). */
  gate?: { state: TaskStatus["state"]; open: Promise<void> };
  async put(taskId: string, status: TaskStatus): Promise<void> {
    if (this.gate?.state === status.state) await this.gate.open;
    this.current.set(taskId, status);
    this.history.push(status.error ? `${status.state}(${status.error})` : status.state);
  }
  async remove(taskId: string): Promise<void> {
    this.current.delete(taskId);
    this.history.push("removed");
  }
  /** Task key revisions that no longer hold (the master moved the task away). */
  readonly staleRevisions = new Set<number>();
  /** Every claim, in order: the task and the task key revision it was made on. */
  readonly claims: Array<{ taskId: string; revision: number }> = [];
  /** Run locks held by other workers (task id → holder): claims of those tasks are refused. */
  private readonly foreignLocks = new Map<string, string>();
  private readonly lockWaiters = new Set<{ taskId: string; wake: () => void }>();

  async claim(taskId: string, status: TaskStatus, taskRevision: number): Promise<ClaimResult> {
    this.claims.push({ taskId, revision: taskRevision });
    if (this.staleRevisions.has(taskRevision)) {
      this.history.push("claim refused");
      return NOT_CLAIMED;
    }
    const holder = this.foreignLocks.get(taskId);
    if (holder !== undefined) {
      this.history.push(`claim refused (locked by ${holder})`);
      return { claimed: false, heldBy: holder, released: (signal) => this.lockChange(taskId, signal) };
    }
    await this.put(taskId, status);
    return CLAIMED;
  }

  /** Another worker takes (holder) or releases (undefined) a task's run lock; waiting claims hear of it. */
  setForeignLock(taskId: string, holder: string | undefined): void {
    if (holder === undefined) this.foreignLocks.delete(taskId);
    else this.foreignLocks.set(taskId, holder);
    for (const waiter of this.lockWaiters) if (waiter.taskId === taskId) waiter.wake();
  }

  /** Claims waiting for a run lock to change. */
  get lockWaits(): number {
    return this.lockWaiters.size;
  }

  private lockChange(taskId: string, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const waiter = {
        taskId,
        wake: () => {
          this.lockWaiters.delete(waiter);
          resolve();
        },
      };
      this.lockWaiters.add(waiter);
      signal.addEventListener(
        "abort",
        () => {
          this.lockWaiters.delete(waiter);
          reject(signal.reason);
        },
        { once: true },
      );
    });
  }
}
