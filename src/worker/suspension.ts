import { EschedulerError } from "../errors.js";
import type { LeaseSession, Logger } from "../node/index.js";
import type { WatchChange } from "../watcher/index.js";
import type { SessionStatus } from "./session-status.js";
import type { WorkerStatus } from "./types.js";
import type { SessionHost } from "./worker-session.js";

export interface SuspensionHooks {
  lease: LeaseSession;
  logger: Logger;
  /** The session's status keys (absent when a caller-supplied sink is used). */
  status?: SessionStatus;
  host: Pick<SessionHost, "emit" | "status" | "setStatus">;
  /** Whether the session has ended (lost or stopping): nothing is done then. */
  ended(): boolean;
  /** Stops every assigned task, as a fence does; returns how many there were. */
  stopAll(): number;
  /** Whether a task still runs or stops here. */
  busy(taskId: string): boolean;
  /** Takes up a view of the task keys (the session's `applySnapshot`). */
  apply(snapshot: ReadonlyMap<string, string>, revisionOf: (key: string) => number): void;
}

/**
 * A session's answer to overdue keep-alives (a resumable lease's `suspended`): every task stops at
 * once, exactly as for a loss, but the registration, the watches and the last view of the task keys
 * stay; when the lease is confirmed in time (`resumed`) the master has moved nothing, so the tasks of
 * the latest view start again here, each through a claim on its task key.
 */
export class Suspension {
  /** Task key → value and mod revision as last seen. */
  private readonly seen = new Map<string, { value: string; revision: number }>();
  /** While suspended: the worker status to return to. */
  private from?: WorkerStatus;

  constructor(private readonly hooks: SuspensionHooks) {
    hooks.lease.on("suspended", (reason) => this.suspend(reason));
    hooks.lease.on("resumed", () => this.resume());
    // Suspended since before this session (while it waited to register): nothing may start until resumed.
    if (hooks.lease.suspended)
      this.suspend(
        new EschedulerError("ERR_LEASE_LOST", `lease ${hooks.lease.id} suspended before the session began`),
      );
  }

  /** Sets the worker's status, or (while suspended) the status to return to once resumed. */
  setStatus(status: WorkerStatus): void {
    if (this.from === undefined) this.hooks.host.setStatus(status);
    else this.from = status;
  }

  /** Records a view of the task keys; false while suspended (the session must not act on it). */
  recordSnapshot(snapshot: ReadonlyMap<string, string>, revisionOf: (key: string) => number): boolean {
    this.seen.clear();
    for (const [key, value] of snapshot) this.seen.set(key, { value, revision: revisionOf(key) });
    return this.from === undefined;
  }

  /** Records one change of the task keys; false while suspended. */
  recordChange(change: WatchChange, modRevision: number): boolean {
    if (change.type === "put") this.seen.set(change.key, { value: change.value, revision: modRevision });
    else this.seen.delete(change.key);
    return this.from === undefined;
  }

  private suspend(reason: Error): void {
    const { hooks } = this;
    if (hooks.ended() || this.from !== undefined) return;
    this.from = hooks.host.status();
    const tasks = hooks.stopAll();
    // Nothing may wait on etcd now: the stops go ahead, status writes are skipped until resumed.
    hooks.status?.suspend();
    hooks.logger.warn(
      { lease: hooks.lease.id, reason: reason.message, tasks },
      "keep-alive overdue: stopped every task; keeping the registration while the lease may resume",
    );
    hooks.host.setStatus("lost");
    hooks.host.emit("suspended", reason);
  }

  private resume(): void {
    const { hooks } = this;
    const from = this.from;
    if (hooks.ended() || from === undefined) return;
    this.from = undefined;
    hooks.host.setStatus(from);
    hooks.host.emit("resumed");
    void this.restart();
  }

  /** The status keys set straight (writes were skipped meanwhile), then the latest view taken up. */
  private async restart(): Promise<void> {
    const { hooks } = this;
    const writing = (await hooks.status?.resume((id) => hooks.busy(id))) ?? true;
    // Suspended again meanwhile: the latest resumption takes the view up.
    if (!writing || hooks.ended() || this.from !== undefined) return;
    const seen = new Map(this.seen);
    hooks.apply(
      new Map([...seen].map(([key, entry]) => [key, entry.value])),
      (key) => seen.get(key)?.revision ?? 0,
    );
    hooks.logger.info({ lease: hooks.lease.id, tasks: seen.size }, "lease resumed: starting the tasks again");
  }
}
