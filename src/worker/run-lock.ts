import type { Etcd3, ICompare, IKeyValue, IRequestOp } from "etcd3";
import type { KeyLayout } from "../node/index.js";
import type { ClaimResult } from "./status-publisher.js";

/**
 * The run locks of one worker's lease (`/R/run/<taskId>` = worker, under the lease): the operations
 * a start claim and a status deletion add to their transaction, and what a refused claim's read
 * means. A lock is taken in the claim's own transaction, so no task starts on two workers whatever
 * the task keys say; it goes in the transaction that deletes the task's status.
 */
export class RunLocks {
  /** Tasks whose lock this lease is believed to hold: their claims compare the lock's lease, not its absence. */
  private readonly held = new Set<string>();

  constructor(
    private readonly client: Etcd3,
    private readonly keys: KeyLayout,
    private readonly worker: string,
    private readonly lease: string,
  ) {}

  /**
   * The claim's condition on the lock: held under this lease already (a restart, a retry), or not
   * held by any lease — absent (etcd compares a missing key's lease as 0), or written without a
   * lease by someone else, which no live worker stands behind and the claim overwrites.
   */
  compare(taskId: string): ICompare {
    const key = Buffer.from(this.keys.runLock(taskId));
    const lease = this.held.has(taskId) ? this.lease : 0;
    return { key, target: "Lease", result: "Equal", lease };
  }

  take(taskId: string): IRequestOp {
    const key = Buffer.from(this.keys.runLock(taskId));
    return { request_put: { key, value: Buffer.from(this.worker), lease: this.lease } };
  }

  /** Deletes the lock only while this lease holds it: another worker's lock stays, and fails nothing. */
  release(taskId: string): IRequestOp {
    const key = Buffer.from(this.keys.runLock(taskId));
    return {
      request_txn: {
        compare: [{ key, target: "Lease", result: "Equal", lease: this.lease }],
        success: [{ request_delete_range: { key } }],
        failure: [],
      },
    };
  }

  /** What a refused transaction reads back, to tell why the claim failed. */
  read(taskId: string): IRequestOp {
    return { request_range: { key: Buffer.from(this.keys.runLock(taskId)) } };
  }

  /** After a claim's transaction applied. */
  taken(taskId: string): void {
    this.held.add(taskId);
  }

  /** After a status deletion applied (the lock went with it, if this lease held it). */
  released(taskId: string): void {
    this.held.delete(taskId);
  }

  /**
   * Judges a refused claim whose task key still held, from the lock as read at `revision`: another
   * holder refuses it; otherwise the belief about the lock was wrong, is corrected, and the claim
   * may be sent again (undefined).
   */
  judge(taskId: string, lock: IKeyValue | undefined, revision: number): ClaimResult | undefined {
    if (!lock || lock.lease === "0") this.held.delete(taskId);
    else if (lock.lease === this.lease) this.held.add(taskId);
    else {
      const holder = lock.value.toString().slice(0, 200);
      return {
        claimed: false,
        heldBy: holder,
        released: (signal) => this.changed(taskId, revision, signal),
      };
    }
    return undefined;
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
