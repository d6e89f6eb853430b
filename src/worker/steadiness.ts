import type { Etcd3 } from "etcd3";
import type { KeyLayout, LeaseSession, Logger } from "../node/index.js";

/** Suspensions within one window that make a lease unsteady. */
export const UNSTEADY_SUSPENSIONS = 3;
/** The window, in TTLs: suspensions counted within it; none within it makes the lease steady again. */
export const STEADY_WINDOW_TTLS = 5;

/** What the worker does about its lease's steadiness: a pure verdict from the times of its suspensions. */
export type SteadinessVerdict = "mark" | "clear" | "keep";

/**
 * Whether to mark the worker unsteady (`mark`), clear its mark (`clear`) or do nothing (`keep`), at
 * `now`, from the times its lease was suspended (ascending), whether it is suspended now, and whether
 * it carries the mark. Unsteady: `UNSTEADY_SUSPENSIONS` suspensions within the last window; steady
 * again: no suspension within the last window and none now.
 */
export function steadinessVerdict(
  suspendedAt: readonly number[],
  suspendedNow: boolean,
  marked: boolean,
  now: number,
  windowMs: number,
): SteadinessVerdict {
  const recent = suspendedAt.filter((at) => now - at < windowMs).length;
  if (!marked) return recent >= UNSTEADY_SUSPENSIONS ? "mark" : "keep";
  return recent === 0 && !suspendedNow ? "clear" : "keep";
}

export interface SteadinessOptions {
  client: Etcd3;
  keys: KeyLayout;
  name: string;
  lease: LeaseSession;
  logger: Logger;
  /** When this worker's leases were suspended, kept across its sessions (a lost lease does not reset it). */
  suspensions?: number[];
}

/**
 * A worker whose keep-alives keep being confirmed just too late flaps: its lease is suspended (every
 * task stops, as for a loss), then resumed (they start again through their claims), over and over.
 * etcd never lets the lease lapse, so the leader keeps planning tasks onto a worker that runs almost
 * none of them. This watch makes such a worker step aside: at the third suspension within five TTLs
 * (counted across its sessions) it writes its own draining mark (`/R/draining/<me>`, under its lease,
 * as a drain on SIGTERM does), so the leader hands its tasks to steady workers; after five TTLs without
 * a suspension it deletes that mark (only the one it wrote, by mod revision: a drain begun since keeps
 * its own), and the leader plans onto it again.
 *
 * At most half the registered workers (those under a lease) step aside at once: each takes a slot
 * `/R/unsteady/<i>`, i below half, in the same transaction as its mark, so etcd refuses the one too
 * many even when they all flap together — a fleet that flaps together has a slow etcd, not bad
 * workers, and stepping aside would only strand the tasks.
 */
export class LeaseSteadiness {
  private readonly suspendedAt: number[];
  /** The mod revision of the mark this watch wrote, and the slot it holds, while they stand. */
  private markRevision?: number;
  private slot?: string;
  private busy = false;
  /** When every slot was last found taken: no new attempt (a read and a transaction per slot) within a window. */
  private refusedAt = Number.NEGATIVE_INFINITY;
  private timer?: NodeJS.Timeout;
  private readonly windowMs: number;

  constructor(
    private readonly options: SteadinessOptions,
    private readonly clock: () => number = () => performance.now(),
  ) {
    this.windowMs = STEADY_WINDOW_TTLS * options.lease.ttlMs;
    this.suspendedAt = options.suspensions ?? [];
  }
  /** Follows the lease's suspensions until `signal` aborts (the mark, if any, goes with the lease). */
  watch(signal: AbortSignal): void {
    const onSuspended = () => {
      this.suspendedAt.push(this.clock());
      void this.review();
    };
    const onResumed = () => this.armClear();
    this.options.lease.on("suspended", onSuspended);
    this.options.lease.on("resumed", onResumed);
    signal.addEventListener(
      "abort",
      () => {
        this.options.lease.off("suspended", onSuspended);
        this.options.lease.off("resumed", onResumed);
        clearTimeout(this.timer);
      },
      { once: true },
    );
  }

  /** Whether this watch's mark stands (for tests and status). */
  get marked(): boolean {
    return this.markRevision !== undefined;
  }

  private armClear(): void {
    clearTimeout(this.timer);
    if (this.markRevision === undefined) return;
    const last = this.suspendedAt.at(-1) ?? this.clock();
    this.timer = setTimeout(() => void this.review(), Math.max(0, last + this.windowMs - this.clock()) + 1);
  }

  private async review(): Promise<void> {
    if (this.busy || !this.options.lease.active) return;
    const now = this.clock();
    while (this.suspendedAt.length > 0 && now - this.suspendedAt[0] >= this.windowMs)
      this.suspendedAt.shift();
    const verdict = steadinessVerdict(
      this.suspendedAt,
      this.options.lease.suspended,
      this.marked,
      now,
      this.windowMs,
    );
    if (verdict === "keep" || (verdict === "mark" && now - this.refusedAt < this.windowMs))
      return this.armClear();
    this.busy = true;
    try {
      if (verdict === "mark") await this.mark();
      else await this.clear();
    } catch (error) {
      this.options.logger.warn(
        { err: error },
        `unsteady lease: ${verdict === "mark" ? "marking" : "clearing"} failed`,
      );
    } finally {
      this.busy = false;
      this.armClear();
    }
  }

  private async mark(): Promise<void> {
    const { client, keys, name, lease, logger } = this.options;
    // The leader plans only registrations under a lease; so are they counted here.
    const registered = await client.getAll().prefix(keys.workersPrefix).exec();
    const slots = Math.floor(registered.kvs.filter((kv) => kv.lease !== "0").length / 2);
    const reason = `unsteady lease: suspended ${this.suspendedAt.length} times in ${this.windowMs}ms`;
    const mark = keys.draining(name);
    for (let index = 0; index < slots; index++) {
      const slot = keys.unsteadySlot(index);
      const taken = await client
        .if(slot, "Version", "==", 0)
        .then(
          client.put(slot).value(name).lease(lease.id),
          client
            .put(mark)
            .value(JSON.stringify({ at: new Date().toISOString(), reason }))
            .lease(lease.id),
        )
        .commit();
      if (!taken.succeeded) continue;
      this.markRevision = Number(taken.header.revision);
      this.slot = slot;
      logger.warn(
        { lease: lease.id, reason, slot: index },
        "unsteady lease: draining myself so steady workers take my tasks",
      );
      return;
    }
    this.refusedAt = this.clock();
    logger.warn(
      { suspensions: this.suspendedAt.length, slots },
      "unsteady lease, but half the registered workers stepped aside already: staying (etcd itself may be slow)",
    );
  }

  private async clear(): Promise<void> {
    const { client, keys, name, lease, logger } = this.options;
    const mark = keys.draining(name);
    const slot = this.slot as string;
    await client
      .if(mark, "Mod", "==", this.markRevision as number)
      .then(client.delete().key(mark))
      .commit();
    await client.if(slot, "Lease", "==", lease.id).then(client.delete().key(slot)).commit();
    this.markRevision = undefined;
    this.slot = undefined;
    logger.info({ windowMs: this.windowMs }, "lease steady again: draining mark removed, taking tasks again");
  }
}
