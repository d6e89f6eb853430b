import type { Etcd3, IRequestOp } from "etcd3";
import {
  type KeyLayout,
  type LeaseSession,
  type Logger,
  MAX_TXN_OPS,
  requestDeadline,
} from "../node/index.js";
import { delay } from "../runtime/index.js";
import { AGAIN, FORGED_LOCK, NESTED_OPS, type RunLocks, type SeenLock } from "./run-lock.js";
import type { LockHeld } from "./status-publisher.js";

export interface LockAuditOptions {
  client: Etcd3;
  keys: KeyLayout;
  lease: LeaseSession;
  logger: Logger;
  /** Time between two audits. */
  intervalMs: number;
  /** Time before the first audit (default `intervalMs`; never more). */
  firstDelayMs?: number;
  /** The run locks of the lease's current status writer (undefined while writes are suspended). */
  locks(): RunLocks | undefined;
  /** Whether the lease's current status writer may have written the status key `key` (`StatusWriter.reports`). */
  reports(key: string): boolean;
  /** Another worker now holds the lock of a task this lease held: the task must stop here. */
  lost(taskId: string, holder: LockHeld): void;
}

/** The warning when a task's run lock went by hand while it ran here, and the lease took it again. */
export const LOCK_RETAKEN = "run lock deleted while the task ran here; taken again";
/** The warning when another worker took the lock of a task running here: the task stops here. */
export const LOCK_LOST = "run lock taken by another worker while the task ran here; stopping it here";
/** The warning (one per key) when a task status under the lease that its worker did not write is deleted. */
export const FORGED_STATUS = "forged task status removed";

/** Keys of the lease sorted between two turns of the event loop (about a millisecond's work). */
const SLICE = 1_000;

/** Nested transactions (or reads) in one audit transaction. */
const PER_TXN = 60;

/**
 * Checks, once per interval, the run locks attached to the lease against those its claims took,
 * with one call (etcd's LeaseTimeToLive with its keys), whatever the number of tasks: a lock that
 * went by hand is taken again, or, when another worker took it meanwhile, the task stops here; a lock
 * under the lease that no claim of it took (written by hand), seen at two audits in a row, is deleted
 * and reported. So a lock deleted by hand misleads no worker for longer than an interval and a round
 * trip, one forged under the lease for longer than two (a claimant elsewhere removes it at once).
 *
 * Likewise a task status under the lease that this worker did not write (a task it was never given:
 * a hand-off would wait forever for that "copy" to stop), seen at two audits in a row with the same
 * mod revision, is deleted comparing that revision and reported. The status writer counts a key as
 * its own from the moment a write of it is queued until a deletion of it is applied, so a genuine
 * status, written just before a start or kept until just after a stop, is never taken for a forged one.
 */
export class LockAudit {
  /** Locks under the lease that its claims had not taken at the last audit. */
  private unclaimed = new Set<string>();
  /** Status keys under the lease that its worker had not written at the last audit → as read then. */
  private strangers = new Map<string, { modRevision: string; value: string }>();

  constructor(private readonly options: LockAuditOptions) {}

  /** Audits every interval until `signal` aborts; a failed audit is logged and the next one goes ahead. */
  async run(signal: AbortSignal): Promise<void> {
    const { intervalMs, firstDelayMs = intervalMs } = this.options;
    for (let wait = Math.min(firstDelayMs, intervalMs); ; wait = intervalMs) {
      try {
        await delay(wait, signal);
      } catch {
        return;
      }
      await this.once().catch((error: unknown) => {
        if (!signal.aborted)
          this.options.logger.warn({ err: error }, "run lock audit failed; trying again later");
      });
    }
  }

  /** One audit: the lease's keys read once, then at most one transaction per MAX_TXN_OPS locks to set straight. */
  async once(): Promise<void> {
    const { client, keys, lease } = this.options;
    const locks = this.options.locks();
    if (!locks || !lease.active) return;
    const answer = await client.leaseClient.leaseTimeToLive({ ID: lease.id, keys: true }, requestDeadline());
    const { strangers, attached } = await this.classify(answer.keys ?? []);
    // First: the lock beside a forged status can go in this audit.
    if (strangers.length + this.strangers.size > 0) await this.dropStrangers(strangers);
    // Claims answered after this read may have taken locks the answer does not list yet.
    const missing = locks.heldAt(Number(answer.header.revision)).filter((id) => !attached.has(id));
    // A lock unclaimed at two audits in a row was not taken by a claim still on its way: no transaction is spent on those.
    const unclaimed = new Set<string>();
    for (const id of attached) if (!locks.holds(id)) unclaimed.add(id);
    const foreign = [...unclaimed].filter((id) => this.unclaimed.has(id));
    this.unclaimed = unclaimed;
    if (missing.length + foreign.length === 0) return;
    const ops = [
      ...missing.map((id) => ({ id, op: locks.retake(id), missing: true })),
      ...foreign.map((id) => ({ id, op: locks.dropForeign(id), missing: false })),
    ];
    const seen: SeenLock[] = [];
    for (let i = 0; i < ops.length; i += MAX_TXN_OPS - NESTED_OPS) {
      const part = ops.slice(i, i + MAX_TXN_OPS - NESTED_OPS);
      const success = part.map(({ op }): IRequestOp => op);
      const done = await client.kv.txn({ compare: [], success, failure: [] }, requestDeadline());
      const revision = Number(done.header.revision);
      part.forEach(({ id, missing: wasMissing }, j) => {
        const nested = done.responses[j]?.response_txn;
        const key = keys.runLock(id);
        if (!wasMissing) {
          if (nested?.succeeded)
            this.options.logger.warn(
              { key, lease: lease.id, reason: "under this lease, whose claims did not take it" },
              FORGED_LOCK,
            );
          return;
        }
        const found = locks.retaken(id, nested, revision);
        if (found === true) this.options.logger.warn({ key, task: id }, LOCK_RETAKEN);
        else if (found) seen.push(found);
      });
    }
    if (seen.length === 0) return;
    // Stop only for a lock a worker stands behind; a forged one is deleted, and taken again next time.
    const verified = await locks.verify(seen);
    seen.forEach(({ taskId }, i) => {
      const holder = verified[i];
      if (holder === undefined || holder === AGAIN) return;
      locks.removed(taskId);
      this.options.logger.warn({ key: keys.runLock(taskId), task: taskId, heldBy: holder.heldBy }, LOCK_LOST);
      this.options.lost(taskId, holder);
    });
  }

  /**
   * The lease's keys, in one pass: the status keys its worker did not write, and the task ids of the
   * run locks attached. A worker of 10,000 tasks has 20,000 keys under its lease: the pass lets the
   * event loop run every SLICE keys, so a task put meanwhile starts without waiting for the audit
   * (each key is judged as of when it is reached; the read itself is already older than that).
   */
  private async classify(listed: Buffer[]): Promise<{ strangers: string[]; attached: Set<string> }> {
    const { keys } = this.options;
    const { statusPrefix, runLocksPrefix } = keys;
    const strangers: string[] = [];
    const attached = new Set<string>();
    for (const [i, raw] of listed.entries()) {
      if (i > 0 && i % SLICE === 0) await new Promise((resolve) => setImmediate(resolve));
      const key = raw.toString();
      if (key.startsWith(runLocksPrefix)) {
        const id = keys.parseRunLock(key);
        if (id !== undefined) attached.add(id);
      } else if (key.startsWith(statusPrefix) && !this.options.reports(key) && keys.parseStatus(key))
        strangers.push(key);
    }
    return { strangers, attached };
  }

  /**
   * Deletes the status keys in `found` that the last audit found too with the same mod revision
   * (compared in the deletion), one warning each; reads the others' mod revisions for the next audit.
   */
  private async dropStrangers(found: string[]): Promise<void> {
    const { client, lease, logger } = this.options;
    const due = found.filter((key) => this.strangers.has(key));
    const deleted = new Set<string>();
    for (let i = 0; i < due.length; i += PER_TXN) {
      const part = due.slice(i, i + PER_TXN);
      const success = part.map((key): IRequestOp => {
        const modRevision = this.strangers.get(key)?.modRevision;
        const compare = [
          {
            key: Buffer.from(key),
            target: "Mod" as const,
            result: "Equal" as const,
            mod_revision: modRevision,
          },
        ];
        return {
          request_txn: {
            compare,
            success: [{ request_delete_range: { key: Buffer.from(key) } }],
            failure: [],
          },
        };
      });
      const done = await client.kv.txn({ compare: [], success, failure: [] }, requestDeadline());
      part.forEach((key, j) => {
        if (!done.responses[j]?.response_txn?.succeeded) return;
        deleted.add(key);
        const value = this.strangers.get(key)?.value.slice(0, 200);
        logger.warn(
          { key, value, lease: lease.id, reason: "under this lease, whose worker did not write it" },
          FORGED_STATUS,
        );
      });
    }
    const next = new Map<string, { modRevision: string; value: string }>();
    const watched = found.filter((key) => !deleted.has(key));
    for (let i = 0; i < watched.length; i += PER_TXN) {
      const success = watched
        .slice(i, i + PER_TXN)
        .map((key): IRequestOp => ({ request_range: { key: Buffer.from(key) } }));
      const read = await client.kv.txn({ compare: [], success, failure: [] }, requestDeadline());
      for (const response of read.responses) {
        const kv = response.response_range?.kvs[0];
        if (kv)
          next.set(kv.key.toString(), { modRevision: String(kv.mod_revision), value: kv.value.toString() });
      }
    }
    this.strangers = next;
  }
}
