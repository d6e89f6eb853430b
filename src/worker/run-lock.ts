import type { Etcd3, ICompare, IKeyValue, IRequestOp, ITxnResponse, Watcher } from "etcd3";
import { type KeyLayout, leaseField, type Logger, nameProblem, requestDeadline } from "../node/index.js";
import type { ClaimResult, LockHeld } from "./status-publisher.js";

/** A claim to send again: the run lock was not as this writer believed (now corrected). */
export const AGAIN = Symbol("again");

/** Operations of the nested transactions below (etcd counts them on top of the outer transaction's). */
export const NESTED_OPS = 4;

/** The warning (one per key) when a run lock no live worker stands behind is deleted. */
export const FORGED_LOCK = "forged run lock removed";

/** A run lock found under another lease: honoured only once `verify` finds a worker behind it. */
export interface SeenLock {
  taskId: string;
  lock: IKeyValue;
  /** The revision it was read at: a wait for its change starts after it. */
  revision: number;
}

const READS_PER_TXN = 60;

/**
 * The run locks of one worker's lease (`/R/run/<taskId>` = worker, under the lease), and the
 * per-task transactions that carry them: a start claim writes the status and takes the lock
 * together, only while the task key is as seen and no other lease holds the lock; a status deletion
 * releases the lock if this lease holds it. Each is a transaction nested in the status writer's
 * batch, so one task's refusal fails nothing else and costs no transaction of its own.
 *
 * A lock is honoured only when a worker stands behind it: its value names a worker whose status for
 * the task lives under the lock's lease (a claim writes both in one transaction, so the lease is
 * alive and that process still reports the run). Whether that lease still holds the worker's
 * registration does not matter: a process whose registration was deleted by hand, and a second
 * process of its name registered meanwhile, would otherwise both run the task (the first stops only
 * once it notices, and its lock must stand until its stop returns). Any other lock was written by
 * hand and is deleted, comparing its mod revision, so a genuine lock taken meanwhile stays. A holder
 * so found is remembered: while its status of that run lasts, a claim is refused even when the lock
 * itself is deleted by hand (the second witness).
 *
 * A claim also requires the worker's registration under this lease (`registered`, compared once
 * per transaction of claims, not per claim): a process whose registration went or is another's
 * starts nothing more, even before its watch of the registration tells it.
 * Two processes of one name share the status key of each task: neither deletes it while it is
 * under the other's lease (see `remove`), so the holder's status stays the witness of its lock.
 */
export class RunLocks {
  /** Task id → the revision at which this lease was known to hold its lock. */
  private readonly held = new Map<string, number>();
  /** Task id → the worker last found holding its lock, and that lock's create revision. */
  private readonly holders = new Map<string, { worker: string; lockCreated: number }>();
  /** A lock's value (the worker's name): one buffer for every claim, which etcd's client only reads. */
  private readonly lockValue: Buffer;
  /** The lease as every operation here names it (see `leaseField`). */
  readonly leaseField: string;

  constructor(
    private readonly client: Etcd3,
    private readonly keys: KeyLayout,
    private readonly worker: string,
    readonly lease: string,
    private readonly logger: Logger,
  ) {
    this.lockValue = Buffer.from(worker);
    this.leaseField = leaseField(lease);
  }

  /**
   * The compare that every transaction carrying claims makes (once, whatever the number of claims):
   * the worker's registration is under this lease. When it fails, no claim of the transaction lands.
   */
  registered(): ICompare {
    return {
      key: Buffer.from(this.keys.worker(this.worker)),
      target: "Lease",
      result: "Equal",
      lease: this.leaseField,
    };
  }

  /**
   * Writes `status` at `statusKey` and takes the lock, if the task key still has `modRevision`, the
   * lock is held by this lease (a restart, a retry) or by no lease (absent, or written without one by
   * hand, which no live worker stands behind), and the last holder found has no status left; only
   * inside a transaction comparing `registered()`. Otherwise reads them back, for `outcome`.
   */
  claim(taskId: string, statusKey: string, status: string, taskKey: string, modRevision: number): IRequestOp {
    const lock = Buffer.from(this.keys.runLock(taskId));
    const task = Buffer.from(taskKey);
    const mine = this.held.has(taskId);
    const holder = mine ? undefined : this.holders.get(taskId);
    const witness = holder && Buffer.from(this.keys.status(holder.worker, taskId));
    return {
      request_txn: {
        compare: [
          { key: task, target: "Mod", result: "Equal", mod_revision: modRevision },
          { key: lock, target: "Lease", result: "Equal", lease: mine ? this.leaseField : 0 },
          ...(witness
            ? [{ key: witness, target: "Version" as const, result: "Equal" as const, version: 0 }]
            : []),
        ],
        success: [
          {
            request_put: { key: Buffer.from(statusKey), value: Buffer.from(status), lease: this.leaseField },
          },
          { request_put: { key: lock, value: this.lockValue, lease: this.leaseField } },
        ],
        failure: [
          { request_range: { key: task, keys_only: true } },
          { request_range: { key: lock } },
          ...(witness ? [{ request_range: { key: witness, keys_only: true } }] : []),
        ],
      },
    };
  }

  /**
   * Deletes the status at `statusKey`, and the lock with it while this lease holds it (never another's);
   * without the lock, the status only while it is under this lease: under another, it is a second
   * process of this name reporting its run (the witness of its lock), not this one's to delete.
   */
  remove(taskId: string, statusKey: string | Buffer): IRequestOp {
    const lock = Buffer.from(this.keys.runLock(taskId));
    const key = Buffer.from(statusKey);
    const status = { request_delete_range: { key } };
    const own = { key, target: "Lease" as const, result: "Equal" as const, lease: this.leaseField };
    return {
      request_txn: {
        compare: [{ key: lock, target: "Lease", result: "Equal", lease: this.leaseField }],
        success: [status, { request_delete_range: { key: lock } }],
        failure: [{ request_txn: { compare: [own], success: [status], failure: [] } }],
      },
    };
  }

  /** After a deletion through `remove` applied. */
  removed(taskId: string): void {
    this.held.delete(taskId);
  }

  /**
   * What a claim's nested transaction says, read at `revision`: claimed; refused because the task key
   * changed or went, or because the last holder still reports the task; a lock of another lease to
   * `verify`; or AGAIN when the belief about the lock was wrong (now corrected).
   */
  outcome(
    taskId: string,
    modRevision: number,
    response: ITxnResponse | undefined,
    revision: number,
  ): ClaimResult | SeenLock | typeof AGAIN {
    if (response?.succeeded) {
      this.held.set(taskId, revision);
      this.holders.delete(taskId);
      return { claimed: true };
    }
    const [task, lock, witness] = (response?.responses ?? []).map((read) => read.response_range?.kvs[0]);
    if (Number(task?.mod_revision ?? 0) !== modRevision) return { claimed: false };
    if (lock && lock.lease !== "0") {
      if (lock.lease !== this.lease) return { taskId, lock, revision };
      this.held.set(taskId, Number(lock.mod_revision));
      return AGAIN;
    }
    this.held.delete(taskId);
    const holder = this.holders.get(taskId);
    // The lock went by hand while its holder still reports that run: the task runs there.
    if (holder && witness && Number(witness.create_revision) <= holder.lockCreated)
      return this.blocked(holder.worker, revision, [
        this.keys.runLock(taskId),
        this.keys.status(holder.worker, taskId),
      ]);
    this.holders.delete(taskId);
    return AGAIN;
  }

  /**
   * Whether a worker stands behind each lock (one read for them all): a refusal naming it when one
   * does; otherwise the lock is deleted (while unchanged), reported, and AGAIN.
   */
  async verify(seen: SeenLock[]): Promise<Array<LockHeld | typeof AGAIN>> {
    const results: Array<LockHeld | typeof AGAIN> = [];
    for (let i = 0; i < seen.length; i += READS_PER_TXN) {
      const part = seen.slice(i, i + READS_PER_TXN);
      const named = part.map(({ lock }) => lock.value.toString());
      const reads = part.flatMap(({ taskId }, j): IRequestOp[] => {
        const name = named[j] as string;
        if (nameProblem(name)) return [];
        return [{ request_range: { key: Buffer.from(this.keys.status(name, taskId)), keys_only: true } }];
      });
      const answer = reads.length
        ? await this.client.kv.txn({ compare: [], success: reads, failure: [] }, requestDeadline())
        : { responses: [] };
      const found = answer.responses.map((read) => read.response_range?.kvs[0]);
      const forged: Array<{ seen: SeenLock; reason: string }> = [];
      for (const [j, entry] of part.entries()) {
        const name = named[j] as string;
        const reason = this.untrusted(entry.lock, name, () => found.shift());
        if (reason) {
          forged.push({ seen: entry, reason });
          results.push(AGAIN);
          continue;
        }
        this.holders.set(entry.taskId, { worker: name, lockCreated: Number(entry.lock.create_revision) });
        results.push(this.blocked(name, entry.revision, [this.keys.runLock(entry.taskId)]));
      }
      await this.deleteForged(forged);
    }
    return results;
  }

  /** Task ids whose locks this lease held as of `revision`. */
  heldAt(revision: number): string[] {
    const ids: string[] = [];
    for (const [taskId, since] of this.held) if (since <= revision) ids.push(taskId);
    return ids;
  }

  holds(taskId: string): boolean {
    return this.held.has(taskId);
  }

  /**
   * Takes the lock again after it went by hand, only while this lease still has the task's status
   * (so a release that landed meanwhile stays released) and no other lease holds it; otherwise reads it.
   */
  retake(taskId: string): IRequestOp {
    const lock = Buffer.from(this.keys.runLock(taskId));
    const status = Buffer.from(this.keys.status(this.worker, taskId));
    return {
      request_txn: {
        compare: [
          { key: lock, target: "Lease", result: "Equal", lease: 0 },
          { key: status, target: "Lease", result: "Equal", lease: this.leaseField },
        ],
        success: [{ request_put: { key: lock, value: this.lockValue, lease: this.leaseField } }],
        failure: [{ request_range: { key: lock } }],
      },
    };
  }

  /** What `retake` found: taken again (true), another lease's lock to `verify`, or nothing to do (false). */
  retaken(taskId: string, response: ITxnResponse | undefined, revision: number): boolean | SeenLock {
    if (response?.succeeded) {
      this.held.set(taskId, revision);
      return true;
    }
    const lock = response?.responses[0]?.response_range?.kvs[0];
    if (!lock || lock.lease === "0" || lock.lease === this.lease) return false;
    // Still believed held: a forged lock is deleted and taken again at the next audit.
    return { taskId, lock, revision };
  }

  /** Deletes a lock under this lease that it did not take: only while this lease has no status for the task. */
  dropForeign(taskId: string): IRequestOp {
    const lock = Buffer.from(this.keys.runLock(taskId));
    const status = Buffer.from(this.keys.status(this.worker, taskId));
    return {
      request_txn: {
        compare: [
          { key: lock, target: "Lease", result: "Equal", lease: this.leaseField },
          { key: status, target: "Version", result: "Equal", version: 0 },
        ],
        success: [{ request_delete_range: { key: lock } }],
        failure: [],
      },
    };
  }

  /** Why no worker stands behind `lock` (`take` yields its named worker's status of the task), or undefined. */
  private untrusted(lock: IKeyValue, name: string, take: () => IKeyValue | undefined): string | undefined {
    if (nameProblem(name)) return "its value is not a worker name";
    if (take()?.lease !== lock.lease) return "the worker it names does not report the task under its lease";
    return undefined;
  }

  private async deleteForged(forged: Array<{ seen: SeenLock; reason: string }>): Promise<void> {
    if (forged.length === 0) return;
    const success = forged.map(({ seen }): IRequestOp => {
      const key = seen.lock.key;
      return {
        request_txn: {
          compare: [{ key, target: "Mod", result: "Equal", mod_revision: seen.lock.mod_revision }],
          success: [{ request_delete_range: { key } }],
          failure: [],
        },
      };
    });
    const answer = await this.client.kv.txn({ compare: [], success, failure: [] }, requestDeadline());
    forged.forEach(({ seen, reason }, i) => {
      if (!answer.responses[i]?.response_txn?.succeeded) return;
      const { lock } = seen;
      this.logger.warn(
        { key: lock.key.toString(), value: lock.value.toString().slice(0, 200), lease: lock.lease, reason },
        FORGED_LOCK,
      );
    });
  }

  private blocked(worker: string, revision: number, keys: string[]): LockHeld {
    return { claimed: false, heldBy: worker, released: (signal) => this.changed(keys, revision, signal) };
  }

  /**
   * Resolves at the first change of any of `keys` after `revision` (the lock deleted, expired with
   * its lease or taken by another; the holder's status gone) or when a watch fails (a claim then
   * reads them again); rejects when `signal` aborts.
   */
  private async changed(keys: string[], revision: number, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    // From `revision` itself, not the next: etcd accepts a watch from its compaction revision, and a
    // compaction at revision + 1 removes a release made there, which such a watch would never show;
    // from `revision` that compaction cancels the watch (an error: the claim reads again).
    const watchers = keys.map((key) =>
      this.client.watch().key(key).startRevision(String(revision)).watcher(),
    );
    // A watch etcd cancelled (an error) is gone: etcd3 would wait forever for the end of cancelling it again.
    const cancelled = new Set<Watcher>();
    try {
      await new Promise<void>((resolve, reject) => {
        const aborted = () => reject(signal.reason);
        signal.addEventListener("abort", aborted, { once: true });
        const done = () => {
          signal.removeEventListener("abort", aborted);
          resolve();
        };
        const after = (kv: IKeyValue) => Number(kv.mod_revision) > revision && done();
        for (const watcher of watchers) {
          // The error listeners stay: an unheard error event would throw.
          watcher.on("put", after).on("delete", after);
          watcher.on("error", () => {
            cancelled.add(watcher);
            done();
          });
        }
      });
    } finally {
      const live = watchers.filter((watcher) => !cancelled.has(watcher));
      await Promise.all(live.map((watcher) => watcher.cancel().catch(() => {})));
    }
  }
}
