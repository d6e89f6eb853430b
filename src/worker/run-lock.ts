import type { Etcd3, IRequestOp, ITxnResponse } from "etcd3";
import type { KeyLayout } from "../node/index.js";
import type { ClaimResult } from "./status-publisher.js";

/** A claim to send again: the run lock was not as this writer believed (now corrected). */
export const AGAIN = Symbol("again");

/** Operations of the nested transactions below (etcd counts them on top of the outer transaction's). */
export const NESTED_OPS = 2;

/**
 * The run locks of one worker's lease (`/R/run/<taskId>` = worker, under the lease), and the
 * per-task transactions that carry them: a start claim writes the status and takes the lock
 * together, only while the task key is as seen and no other lease holds the lock; a status deletion
 * releases the lock if this lease holds it. Each is a transaction nested in the status writer's
 * batch, so one task's refusal fails nothing else and costs no transaction of its own.
 */
export class RunLocks {
  /** Tasks whose lock this lease is believed to hold: their claims compare the lock's lease with ours, not with none. */
  private readonly held = new Set<string>();

  constructor(
    private readonly client: Etcd3,
    private readonly keys: KeyLayout,
    private readonly worker: string,
    private readonly lease: string,
  ) {}

  /**
   * Writes `status` at `statusKey` and takes the lock, if the task key still has `modRevision` and
   * the lock is held by this lease (a restart, a retry) or by no lease: absent (etcd compares a
   * missing key's lease as 0), or written without one by hand, which no live worker stands behind.
   * Otherwise reads both back, for `outcome`.
   */
  claim(taskId: string, statusKey: string, status: string, taskKey: string, modRevision: number): IRequestOp {
    const lock = Buffer.from(this.keys.runLock(taskId));
    const task = Buffer.from(taskKey);
    const lockLease = this.held.has(taskId) ? this.lease : 0;
    return {
      request_txn: {
        compare: [
          { key: task, target: "Mod", result: "Equal", mod_revision: modRevision },
          { key: lock, target: "Lease", result: "Equal", lease: lockLease },
        ],
        success: [
          { request_put: { key: Buffer.from(statusKey), value: Buffer.from(status), lease: this.lease } },
          { request_put: { key: lock, value: Buffer.from(this.worker), lease: this.lease } },
        ],
        failure: [{ request_range: { key: task, keys_only: true } }, { request_range: { key: lock } }],
      },
    };
  }

  /** Deletes the status at `statusKey`, and the lock with it while this lease holds it (never another's). */
  remove(taskId: string, statusKey: string | Buffer): IRequestOp {
    const lock = Buffer.from(this.keys.runLock(taskId));
    const status = { request_delete_range: { key: Buffer.from(statusKey) } };
    return {
      request_txn: {
        compare: [{ key: lock, target: "Lease", result: "Equal", lease: this.lease }],
        success: [status, { request_delete_range: { key: lock } }],
        failure: [status],
      },
    };
  }

  /** After a deletion through `remove` applied. */
  removed(taskId: string): void {
    this.held.delete(taskId);
  }

  /**
   * What a claim's nested transaction says, read at `revision`: claimed; refused because the task key
   * changed or went, or because another lease holds the lock; or AGAIN when the belief about the
   * lock was wrong (now corrected).
   */
  outcome(
    taskId: string,
    modRevision: number,
    response: ITxnResponse | undefined,
    revision: number,
  ): ClaimResult | typeof AGAIN {
    if (response?.succeeded) {
      this.held.add(taskId);
      return { claimed: true };
    }
    const [task, lock] = (response?.responses ?? []).map((read) => read.response_range?.kvs[0]);
    if (Number(task?.mod_revision ?? 0) !== modRevision) return { claimed: false };
    if (!lock || lock.lease === "0") this.held.delete(taskId);
    else if (lock.lease === this.lease) this.held.add(taskId);
    else {
      const holder = lock.value.toString().slice(0, 200);
      return { claimed: false, heldBy: holder, released: (signal) => this.changed(taskId, revision, signal) };
    }
    return AGAIN;
  }

  /**
   * Resolves at the lock's first change after `revision` (deleted, expired with its lease, or taken
   * by another) or when the watch fails (a claim then reads it again); rejects when `signal` aborts.
   */
  async changed(taskId: string, revision: number, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    const watcher = this.client
      .watch()
      .key(this.keys.runLock(taskId))
      .startRevision(String(revision + 1))
      .watcher();
    try {
      await new Promise<void>((resolve, reject) => {
        const aborted = () => reject(signal.reason);
        signal.addEventListener("abort", aborted, { once: true });
        const done = () => {
          signal.removeEventListener("abort", aborted);
          resolve();
        };
        // The error listener stays: an unheard error event would throw.
        watcher.on("put", done).on("delete", done).on("error", done);
      });
    } finally {
      await watcher.cancel().catch(() => {});
    }
  }
}
