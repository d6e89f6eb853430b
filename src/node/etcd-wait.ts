/**
 * A daemon's start-up against an etcd that may not serve yet (no leader, a leader changing, a member
 * too slow): it waits as long as etcd answers at all, and gives up only when nothing answers for the
 * whole dial timeout or an error says retrying cannot help (credentials, permissions, TLS).
 */
import {
  EtcdAuthenticationFailedError,
  EtcdError,
  EtcdLeaseInvalidError,
  EtcdPermissionDeniedError,
  type Etcd3,
  EtcdRoleNotGrantedError,
  EtcdUserNotFoundError,
  GRPCGenericError,
  GRPCUnauthenticatedError,
} from "etcd3";
import { isBrokenCircuitError } from "cockatiel";
import { firstLine } from "../errors.js";
import { delay } from "../runtime/index.js";
import { createEtcdClient, type EtcdConnectionConfig, etcdUnusable, isTransientEtcdError } from "./client.js";
import type { Logger } from "./logger.js";

/** The first progress warning of a wait comes this long after its first warning; each next one twice as late, up to a minute. */
export const WAIT_PROGRESS_MS = 5_000;
const WAIT_PROGRESS_MAX_MS = 60_000;

/**
 * The log of one start-up step waiting on etcd: one warning when it first fails, then a progress
 * warning at growing intervals (5 s, 10 s, 20 s … a minute) saying how long it has waited, and one
 * info line when it goes on. Structured fields: `step`, `reason`, `waitedMs`, `attempts`.
 */
export class EtcdWaitLog {
  private since?: number;
  private nextProgressAt = 0;
  private progressMs = WAIT_PROGRESS_MS;
  private attempts = 0;

  constructor(
    private readonly logger: Logger,
    private readonly step: string,
  ) {}

  /** One more failed attempt of the step (the first one warns; later ones only at the progress times). */
  failed(error: unknown): void {
    const now = Date.now();
    this.attempts++;
    const reason = firstLine(error);
    if (this.since === undefined) {
      this.since = now;
      this.progressMs = WAIT_PROGRESS_MS;
      this.nextProgressAt = now + this.progressMs;
      this.logger.warn({ step: this.step, reason }, "waiting for etcd to serve");
      return;
    }
    if (now < this.nextProgressAt) return;
    this.progressMs = Math.min(this.progressMs * 2, WAIT_PROGRESS_MAX_MS);
    this.nextProgressAt = now + this.progressMs;
    const { step, attempts } = this;
    this.logger.warn({ step, reason, waitedMs: now - this.since, attempts }, "still waiting for etcd");
  }

  /** The step succeeded: says how long it waited, if it did. */
  over(): void {
    if (this.since === undefined) return;
    this.logger.info({ step: this.step, waitedMs: Date.now() - this.since }, "etcd serves: going on");
    this.since = undefined;
    this.attempts = 0;
  }
}

/** An error that trying again cannot cure: credentials, permissions or TLS refused (exit 2 at start-up). */
export function isPermanentEtcdError(error: unknown): boolean {
  if (
    error instanceof EtcdAuthenticationFailedError ||
    error instanceof EtcdPermissionDeniedError ||
    error instanceof EtcdRoleNotGrantedError ||
    error instanceof EtcdUserNotFoundError ||
    error instanceof GRPCUnauthenticatedError
  )
    return true;
  return /TLS|SSL|certificate|handshake/i.test(firstLine(error));
}

/** Our errors that say etcd, a lease or a campaign failed under a fault, not that something is misconfigured. */
const ETCD_FAULT_CODES = new Set(["ERR_ETCD_UNREACHABLE", "ERR_LEASE_LOST", "ERR_DEPOSED", "ERR_ABORTED"]);

/**
 * Whether a start-up step after the first read (lease grant, registration, campaign) that failed with
 * `error` is worth trying again: an etcd error that is not permanent, or one of ours about etcd, a lease
 * or a campaign — including etcd's answer that a lease just granted is gone (a process stalled past its
 * TTL at start-up: the next attempt takes a fresh lease). Anything else (a bug) is not.
 */
export function isRetryableAtStartup(error: unknown): boolean {
  if (isPermanentEtcdError(error)) return false;
  if (
    error instanceof GRPCGenericError ||
    error instanceof EtcdError ||
    error instanceof EtcdLeaseInvalidError
  )
    return true;
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === "string" && ETCD_FAULT_CODES.has(code);
}

export interface EtcdWaitOptions {
  /** Endpoints, TLS files and dial timeout: how long nothing may answer at all before giving up. */
  config: Omit<EtcdConnectionConfig, "etcdUser" | "etcdPassword">;
  /** A key under the root (a user allowed only the root's prefix may read nothing else). */
  key: string;
  logger: Logger;
  signal?: AbortSignal;
  /** A read that needs etcd to serve (linearizable: a leader); default a read of `key`. */
  serve?: (deadline: number) => Promise<unknown>;
  /** Resolves when some member answers at all; default: each endpoint's status, asked of each directly. */
  answer?: (deadline: number) => Promise<unknown>;
}

/**
 * Resolves once etcd serves a read of `key`. While it does not but some member answers (its status:
 * etcd is there, without a leader or too slow for now), waits without bound, logging through
 * `EtcdWaitLog`. Throws ERR_ETCD_UNREACHABLE, with the last reason, when no member answered for the
 * dial timeout, and at once on an error retrying cannot cure (not transient).
 */
export async function waitForEtcd(client: Etcd3, options: EtcdWaitOptions): Promise<void> {
  const { config, key, signal } = options;
  const { etcd: endpoints, dialTimeout: dialTimeoutMs } = config;
  const serve = options.serve ?? ((deadline) => client.get(key).options({ deadline }).exists());
  const statusClients: Etcd3[] = [];
  const answer = options.answer ?? anyStatus(config, statusClients);
  const log = new EtcdWaitLog(options.logger, "connect");
  const listening = new AbortController();
  const answers = listenForAnswers(
    answer,
    dialTimeoutMs,
    AbortSignal.any([listening.signal, ...(signal ? [signal] : [])]),
  );
  try {
    // With several endpoints an attempt gets at most half the dial timeout, so one silent member leaves time for another.
    const attemptMs =
      endpoints.length > 1
        ? Math.max(Math.ceil(dialTimeoutMs / 2), Math.min(dialTimeoutMs, 1_000))
        : dialTimeoutMs;
    let lastServeError: unknown;
    for (let pause = 50; ; pause = Math.min(pause * 2, 1_000)) {
      signal?.throwIfAborted();
      const left = answers.answeredAt + dialTimeoutMs - Date.now();
      try {
        await serve(Date.now() + Math.max(1, Math.min(attemptMs, left)));
        log.over();
        return;
      } catch (error) {
        if (!isTransientEtcdError(error)) throw etcdUnusable(endpoints, error);
        // "Circuit breaker open" says only that every member failed just now: report why they did.
        if (!isBrokenCircuitError(error)) lastServeError = error;
        const reason = lastServeError ?? answers.lastError ?? error;
        if (Date.now() - answers.answeredAt >= dialTimeoutMs)
          throw etcdUnusable(endpoints, answers.lastError ?? reason, dialTimeoutMs);
        if (answers.answered) log.failed(reason);
      }
      await delay(pause, signal);
    }
  } finally {
    // An answer still awaited ends within its deadline, or at once when its client closes; it rejects nothing.
    listening.abort();
    for (const statusClient of statusClients) statusClient.close();
  }
}

/**
 * Asks every endpoint's status, each through a client of its own (so none is skipped by chance), without
 * credentials (etcd answers a status to anyone, and authenticating needs a leader): resolves at the first
 * answer, rejects with the first endpoint's error when none answers.
 */
function anyStatus(
  config: EtcdWaitOptions["config"],
  clients: Etcd3[],
): (deadline: number) => Promise<unknown> {
  const { etcdCa, etcdCert, etcdKey, dialTimeout } = config;
  return async (deadline) => {
    if (clients.length === 0)
      for (const endpoint of config.etcd)
        clients.push(createEtcdClient({ etcd: [endpoint], etcdCa, etcdCert, etcdKey, dialTimeout }));
    try {
      return await Promise.any(clients.map((each) => each.maintenance.status({ deadline })));
    } catch (error) {
      throw error instanceof AggregateError ? error.errors[0] : error;
    }
  };
}

interface Answers {
  /** When a member last answered (the wait's start until one does). */
  answeredAt: number;
  answered: boolean;
  /** Why no member answered, the last time none did. */
  lastError?: unknown;
}

/** Asks with `answer` over and over until `signal` aborts, noting when a member last answered. */
function listenForAnswers(
  answer: (deadline: number) => Promise<unknown>,
  dialTimeoutMs: number,
  signal: AbortSignal,
): Answers {
  const answers: Answers = { answeredAt: Date.now(), answered: false };
  // Several asks per dial timeout, each allowed all of it and none waiting for the one before: an ask lost
  // by chance never makes the wait give up, and a member that answers late (an etcd crawling under load)
  // is there all the same — its answer counts when it comes.
  const everyMs = Math.min(Math.max(Math.floor(dialTimeoutMs / 5), 50), 1_000);
  void (async () => {
    while (!signal.aborted) {
      answer(Date.now() + dialTimeoutMs).then(
        () => {
          answers.answeredAt = Date.now();
          answers.answered = true;
        },
        (error: unknown) => {
          if (!isBrokenCircuitError(error)) answers.lastError = error;
        },
      );
      await delay(everyMs, signal).catch(() => undefined);
    }
  })();
  return answers;
}
