import type { TaskStatus } from "../../../src/node/index.js";
import type { StatusSink } from "../../../src/worker/status-publisher.js";

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
  async claim(taskId: string, status: TaskStatus, taskRevision: number): Promise<boolean> {
    this.claims.push({ taskId, revision: taskRevision });
    if (this.staleRevisions.has(taskRevision)) {
      this.history.push("claim refused");
      return false;
    }
    await this.put(taskId, status);
    return true;
  }
}
