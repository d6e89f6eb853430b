import type { Etcd3 } from "etcd3";
import type { KeyLayout, LeaseSession, Logger } from "../node/index.js";
import { unlessAborted } from "../runtime/index.js";
import { readLeader } from "../readiness/index.js";

/** What a drain needs of its worker. */
export interface DrainTarget {
  client: Etcd3;
  keys: KeyLayout;
  name: string;
  logger: Logger;
  /** The current registration (undefined while not registered): its lease, and what it still holds. */
  session?: { lease: LeaseSession; tasks(): unknown[] };
  /** Resolves at the next change of what the worker holds. */
  changed(): Promise<void>;
}

/** How a drain ended: `empty` (every task handed off), or why the worker leaves the old way. */
export type DrainOutcome = "empty" | "timeout" | "unregistered" | "mark-failed";

/**
 * Drains a worker before it leaves: writes `/R/draining/<me>` under its own lease, so the leader plans
 * at once as if the worker were gone and hands each task off (the worker stops a task as its key is
 * removed, and the new owner starts it as soon as its status is gone); then waits until the worker
 * holds nothing — at most `stopTimeoutMs`, or at most a TTL when no master leads (a standby takes
 * over within one). Whatever is left is the caller's to stop as a plain leave does; the mark goes
 * with the lease.
 */
export async function drainTasks(
  target: DrainTarget,
  limits: { stopTimeoutMs: number; ttlMs: number },
): Promise<DrainOutcome> {
  const { logger, session } = target;
  if (!session?.lease.active) return "unregistered";
  const held = () => session.tasks().length;
  const startedAt = Date.now();
  try {
    // On the data connection, like the registration (the lease's own connection is for keep-alives).
    await target.client
      .put(target.keys.draining(target.name))
      .value(JSON.stringify({ at: new Date().toISOString() }))
      .lease(session.lease.id)
      .exec();
  } catch (error) {
    logger.warn({ err: error }, "drain: writing the draining mark failed; leaving without a drain");
    return "mark-failed";
  }
  const leader = await readLeader(target.client, target.keys).catch(() => undefined);
  const timeoutMs =
    leader === undefined ? Math.min(limits.stopTimeoutMs, limits.ttlMs) : limits.stopTimeoutMs;
  logger.info(
    { tasks: held(), leader, timeoutMs },
    "draining: waiting for the leader to hand every task off",
  );
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), timeoutMs);
  try {
    while (held() > 0) await unlessAborted(target.changed(), deadline.signal);
  } catch {
    logger.warn(
      { tasks: held(), timeoutMs, leader },
      "drain timed out; stopping the remaining tasks and leaving",
    );
    return "timeout";
  } finally {
    clearTimeout(timer);
  }
  logger.info({ ms: Date.now() - startedAt }, "drained: every task handed off");
  return "empty";
}

/**
 * Writes `/R/left/<me>` (no lease: it outlives the lease) before a stop revokes the lease, so a leader
 * with `--reassign-delay` moves the tasks left at once instead of holding them as a crashed worker's.
 * The next registration under this name deletes it. Best effort: without it the tasks are held.
 */
export async function markLeft(
  target: Pick<DrainTarget, "client" | "keys" | "name" | "logger">,
  lease: LeaseSession | undefined,
): Promise<void> {
  if (!lease?.active) return;
  try {
    await target.client
      .put(target.keys.left(target.name))
      .value(JSON.stringify({ at: new Date().toISOString() }))
      .exec();
  } catch (error) {
    target.logger.warn({ err: error }, "writing the left mark failed; a leader may hold the tasks left");
  }
}
