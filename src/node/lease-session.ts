import { ClientClosedError, type Etcd3, EtcdLeaseInvalidError, type Lease } from "etcd3";
import { EschedulerError } from "../errors.js";
import { SafeEmitter, settlesWithin } from "../runtime/index.js";
import { leaseConnection } from "./client.js";
import { KeepaliveStream } from "./keepalive-stream.js";
import { type Logger, silentLogger } from "./logger.js";

export interface LeaseSessionOptions {
  /** Lease time-to-live; etcd counts whole seconds, so it is rounded up. */
  ttlMs: number;
  /** Loss is reported when no keep-alive was confirmed for `ttl - margin`; default 30% of the TTL. */
  marginMs?: number;
  /**
   * At `ttl - margin` without a confirmed keep-alive, report `suspended` (stop what the lease guards)
   * but keep trying: a confirmation while the lease can still be alive reports `resumed`; only etcd
   * saying the lease is gone, or a whole TTL without confirmation, reports `lost`. Default: report
   * `lost` at `ttl - margin`.
   */
  resumable?: boolean;
  logger?: Logger;
}

/**
 * Keep-alives sent per TTL. A confirmation comes at most one interval plus one round trip after the
 * send it confirms, so round trips up to ttl − margin − ttl/4 fence nobody; the README promises
 * ttl − margin − ttl/3 and leaves ttl/12 (250 ms at a 3 s TTL) for a busy process's late timers.
 * Not more often: at ttl/6, 500 workers' renewals (300 a second) pushed etcd 3.4 past a knee during
 * the fleet benchmark's first start (50,000 leased claims): keep-alive streams went unanswered for
 * seconds, the leader's lease was lost over and over and the first start never completed; at ttl/4
 * no lease was lost and it took 17 s. (etcd 3.4 answers each renewal by copying its buffer of writes
 * not yet committed to its database: README, "etcd for a fleet of hundreds of workers".)
 */
const KEEPALIVES_PER_TTL = 4;

/** Pause before retrying a keep-alive that failed (rather than waiting for the next tick). */
const KEEPALIVE_RETRY_MS = 50;

interface LeaseSessionEvents {
  lost: [Error];
  /** (`resumable` only) No keep-alive confirmed for `ttl - margin`: act as if lost, the session lives on. */
  suspended: [Error];
  /** (`resumable` only) A keep-alive was confirmed after `suspended`, in time: the lease never lapsed. */
  resumed: [];
  /** A confirmed keep-alive, with when it was sent (monotonic ms, `performance.now()`). */
  keepalive: [number];
}

/** How long before the server-side expiry loss is reported: `marginMs`, default 30 % of the TTL. */
export function leaseMarginMs(ttlMs: number, marginMs?: number): number {
  return marginMs ?? Math.round(ttlMs * 0.3);
}

/**
 * A lease kept alive for the lifetime of a process. Loss detection does not trust a quiet stream:
 * it reports `lost` when etcd says the lease is gone, and also when no keep-alive has been confirmed
 * for the TTL minus a margin — before etcd can expire the lease and hand its keys to someone else.
 */
export class LeaseSession extends SafeEmitter<LeaseSessionEvents> {
  readonly id: string;
  readonly ttlMs: number;
  /** Aborted when the lease is lost, closed or orphaned. */
  readonly signal: AbortSignal;
  /** Resolves with the reason once the lease is lost (never on close or orphan). */
  readonly lost: Promise<Error>;
  private readonly controller = new AbortController();
  private readonly lossThresholdMs: number;
  private readonly logger: Logger;
  /**
   * When the last keep-alive that etcd confirmed was sent (the server's expiry is at least TTL after
   * it), on the monotonic clock: a wall-clock step must not delay self-fencing. Unset until the first.
   */
  private confirmedAt = Number.NEGATIVE_INFINITY;
  private keepaliveTimer?: NodeJS.Timeout;
  private watchdogTimer?: NodeJS.Timeout;
  private readonly keepalives: KeepaliveStream;
  private retryTimer?: NodeJS.Timeout;
  private readonly keepaliveIntervalMs: number;
  private resolveLost!: (reason: Error) => void;
  private readonly resumable: boolean;
  private isSuspended = false;
  /** Set once the session is handed out: before, nothing is held under the lease, so nothing fences. */
  private watched = false;

  /**
   * Grants a lease (within `deadlineMs`) and resolves once etcd confirmed a keep-alive within
   * `ttl - margin` of its send (within another `deadlineMs`): the fencing clock starts at that send, so
   * a slow grant (or connection set-up) spends none of the margin; nothing is held under the lease before.
   */
  static async grant(
    client: Etcd3,
    options: LeaseSessionOptions & { deadlineMs?: number },
  ): Promise<LeaseSession> {
    const ttlSeconds = Math.max(1, Math.ceil(options.ttlMs / 1000));
    const deadlineMs = options.deadlineMs ?? 5_000;
    // Keep-alives travel on their own connection, never queued behind the process's data writes.
    const connection = leaseConnection(client);
    const lease = connection.lease(ttlSeconds, { autoKeepAlive: false, deadline: Date.now() + deadlineMs });
    const id = await lease.grant();
    const session = new LeaseSession(connection, lease, id, ttlSeconds * 1000, options);
    await session.firstConfirmation(deadlineMs);
    return session;
  }

  private constructor(
    connection: Etcd3,
    readonly lease: Lease,
    id: string,
    ttlMs: number,
    options: LeaseSessionOptions,
  ) {
    super();
    this.id = id;
    this.ttlMs = ttlMs;
    this.signal = this.controller.signal;
    this.logger = options.logger ?? silentLogger;
    this.listenerErrorLog = this.logger;
    this.lossThresholdMs = ttlMs - leaseMarginMs(ttlMs, options.marginMs);
    this.resumable = options.resumable ?? false;
    this.lost = new Promise((resolve) => {
      this.resolveLost = resolve;
    });
    lease.on("lost", (error) => this.reportLoss(error));
    this.keepaliveIntervalMs = Math.max(100, Math.floor(ttlMs / KEEPALIVES_PER_TTL));
    // Keep-alives go out every interval whatever is outstanding; a late answer still counts from its
    // send time, so only the rule (nothing sent within ttl − margin confirmed) fences.
    this.keepalives = new KeepaliveStream(connection, id, this.lossThresholdMs, {
      answered: (sentAt, ttlSeconds) => this.answered(sentAt, ttlSeconds),
      failed: (error) => this.keepaliveFailed(error),
    });
    this.keepaliveTimer = setInterval(() => this.sendKeepalive(), this.keepaliveIntervalMs);
    this.sendKeepalive();
  }

  /**
   * Resolves at the first keep-alive confirmed within `ttl - margin` of its send (the watchdog starts
   * then); rejects when the lease is lost first or none is within `deadlineMs`, having revoked it.
   */
  private async firstConfirmation(deadlineMs: number): Promise<void> {
    const fresh = new Promise<void>((resolve) => {
      const check = (sentAt: number) => {
        if (performance.now() - sentAt >= this.lossThresholdMs) return;
        this.off("keepalive", check);
        resolve();
      };
      this.on("keepalive", check);
    });
    if ((await settlesWithin(Promise.race([fresh, this.lost]), deadlineMs)) && this.active) {
      this.watched = true;
      return this.armWatchdog();
    }
    const reason = this.active
      ? new EschedulerError(
          "ERR_ETCD_UNREACHABLE",
          `lease ${this.id}: no keep-alive confirmed in time within ${deadlineMs}ms`,
        )
      : await this.lost;
    this.stopRefreshing("not confirmed");
    await revokeQuietly(this);
    throw reason;
  }

  get active(): boolean {
    return !this.signal.aborted;
  }

  /** Between `suspended` and `resumed` (or the end of the session). */
  get suspended(): boolean {
    return this.isSuspended && this.active;
  }

  /** Stops refreshing and revokes the lease, so every key under it disappears at once. Idempotent. */
  async close(deadlineMs = 2_000): Promise<void> {
    if (!this.stopRefreshing("closed")) return;
    try {
      await this.lease.revoke({ deadline: Date.now() + deadlineMs });
    } catch (error) {
      this.logger.warn({ err: error, lease: this.id }, "lease revoke failed; it will expire by itself");
    }
  }

  /** Stops refreshing and lets the lease expire on its own. Idempotent. */
  orphan(): void {
    if (this.stopRefreshing("orphaned")) this.lease.release();
  }

  private sendKeepalive(): void {
    if (this.active) this.keepalives.send();
  }

  private answered(sentAt: number, ttlSeconds: number): void {
    if (!this.active) return;
    if (ttlSeconds <= 0) return this.reportLoss(new EtcdLeaseInvalidError(this.id));
    this.confirmedAt = Math.max(this.confirmedAt, sentAt);
    // Resumed only while the confirmed expiry leaves the full margin, as a fresh session would have.
    const resumed = this.isSuspended && performance.now() - this.confirmedAt < this.lossThresholdMs;
    if (resumed) this.isSuspended = false;
    if (this.watched) this.armWatchdog();
    this.emit("keepalive", sentAt);
    if (resumed) {
      this.logger.info({ lease: this.id }, "keep-alive confirmed again: lease resumed");
      this.emit("resumed");
    }
  }

  private keepaliveFailed(error: Error): void {
    if (!this.active) return;
    // A closed client can confirm nothing more: retrying would spin until the session is closed.
    if (error instanceof ClientClosedError) return this.reportLoss(error);
    this.logger.debug({ err: error, lease: this.id }, "keep-alive not confirmed; retrying");
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.sendKeepalive(), KEEPALIVE_RETRY_MS);
  }

  /** Fires at `ttl - margin` after the last confirmation, or (suspended) at the TTL itself. */
  private armWatchdog(): void {
    clearTimeout(this.watchdogTimer);
    const limit = this.isSuspended ? this.ttlMs : this.lossThresholdMs;
    const remaining = this.confirmedAt + limit - performance.now();
    this.watchdogTimer = setTimeout(() => this.onSilence(), Math.max(0, remaining));
  }

  private onSilence(): void {
    const silentFor = Math.round(performance.now() - this.confirmedAt);
    const reason = new EschedulerError(
      "ERR_LEASE_LOST",
      `lease ${this.id}: no keep-alive confirmed for ${silentFor}ms (ttl ${this.ttlMs}ms)`,
    );
    if (!this.resumable || this.isSuspended) return this.reportLoss(reason);
    this.isSuspended = true;
    this.logger.warn(
      { lease: this.id, reason: reason.message },
      "lease suspended: acting as lost, still confirming",
    );
    this.armWatchdog();
    this.emit("suspended", reason);
  }

  private reportLoss(error: Error): void {
    if (!this.stopRefreshing("lost")) return;
    this.lease.release();
    this.logger.warn({ lease: this.id, reason: error.message }, "lease lost");
    this.resolveLost(error);
    this.emit("lost", error);
  }

  /** Returns false when the session had already ended. */
  private stopRefreshing(reason: string): boolean {
    if (!this.active) return false;
    clearInterval(this.keepaliveTimer);
    clearTimeout(this.watchdogTimer);
    clearTimeout(this.retryTimer);
    this.keepalives.close();
    this.controller.abort(new EschedulerError("ERR_LEASE_LOST", `lease ${this.id} ${reason}`));
    return true;
  }
}

/** Revokes a lease that is no longer kept alive, in case etcd still holds it (its keys then go at once). */
export async function revokeQuietly(session: LeaseSession): Promise<void> {
  await session.lease.revoke({ deadline: Date.now() + 1_000 }).catch(() => undefined);
}
