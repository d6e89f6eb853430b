import type { Etcd3 } from "etcd3";
import { EschedulerError } from "../errors.js";
import {
  type DoubleBarrierKeys,
  doubleBarrierKeys,
  type KeyLayout,
  type LeaseSession,
  type Logger,
  requestDeadline,
  silentLogger,
} from "../node/index.js";
import { delay, exponentialBackoff } from "../runtime/index.js";
import { type BarrierWait, waitForBarrier } from "./barrier-wait.js";
import { BarrierWaiters, participantOf } from "./waiters.js";

export interface DoubleBarrierOptions {
  client: Etcd3;
  /** Where this barrier's keys live, e.g. `KeyLayout.barrierPrefix`. */
  prefix: string;
  /** This participant's name (one waiter key per name). */
  name: string;
  /** Participants that must be in before anyone passes `enter()`. */
  count: number;
  /** The participant's key lives under this lease, so a crashed participant drops out by itself. */
  session: LeaseSession;
  logger?: Logger;
}

export interface BarrierWaitOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}

/** Names listed in an error or log line before the rest is only counted. */
const MAX_NAMES = 10;
/** Reads of the ready key after an abort or a timeout before this participant counts itself out. */
const READY_READS = 5;
/** Floor of the interval of a participant's own counting while it waits. */
const MIN_POLL_MS = 300;

/**
 * A double barrier, after etcd's Go recipe: `enter()` waits until `count` participants are in,
 * `leave()` until all have left. Each participant holds `<prefix>waiters/<name>` under its own lease.
 * Whoever finds `count` waiters writes `<prefix>ready` (no lease), so a crash after that does not revert
 * the barrier; a ready key written before a participant entered (a stale round) does not let it pass.
 *
 * A participant counts the waiters in the transaction that enters or leaves (a count, not the keys),
 * and watches only the ready key: the participant whose arrival completes the count writes it (after
 * reading the waiters' leases, and only while it is still in and the ready key is as read, so a write
 * that arrives late opens no later round; it tries again until it has written or seen it), the one
 * whose departure empties the barrier deletes it, and each wakes everyone with one event. A
 * participant that crashes before its word is like any other that crashed: the gathering waits for
 * its replacement, whose arrival completes it. Participants leaving count again once per lease TTL,
 * so one that crashed instead of leaving (its key gone with its lease) holds nobody. Keys under the
 * waiters' prefix that are no participant are removed when read (`BarrierWaiters`).
 */
export class DoubleBarrier {
  private readonly client: Etcd3;
  private readonly keys: DoubleBarrierKeys;
  private readonly name: string;
  private readonly count: number;
  private readonly session: LeaseSession;
  private readonly logger: Logger;
  private readonly waiters: BarrierWaiters;

  constructor(options: DoubleBarrierOptions) {
    if (!Number.isInteger(options.count) || options.count < 1) {
      throw new EschedulerError(
        "ERR_CONFIG",
        `barrier count must be a positive integer (got ${options.count})`,
      );
    }
    this.client = options.client;
    this.keys = doubleBarrierKeys(options.prefix);
    this.keys.waiter(options.name); // validates the name now rather than on enter()
    this.name = options.name;
    this.count = options.count;
    this.session = options.session;
    this.logger = (options.logger ?? silentLogger).child({
      barrier: this.keys.prefix,
      participant: options.name,
    });
    this.waiters = new BarrierWaiters(this.client, this.keys, this.logger);
  }

  /** Waits until `count` participants are in. On timeout, abort or lease loss it withdraws this participant and throws. */
  async enter(options: BarrierWaitOptions = {}): Promise<void> {
    const signal = anySignal([options.signal, this.session.signal]);
    signal.throwIfAborted();
    const ownKey = this.keys.waiter(this.name);
    const entered = await this.client.kv.txn(
      {
        compare: [],
        success: [
          {
            request_put: {
              key: Buffer.from(ownKey),
              value: Buffer.from(new Date().toISOString()),
              lease: this.session.id,
            },
          },
          this.waiters.countOp(),
        ],
        failure: [],
      },
      requestDeadline(),
    );
    const entryRevision = Number(entered.header.revision);
    const counted = Number(entered.responses[1]?.response_range?.count ?? 0);
    // The entry's own count serves the first check (later ones count again).
    const known = firstOnly(counted);
    this.logger.info({ count: this.count }, "entered barrier");
    try {
      await this.waitFor(signal, options.timeoutMs, {
        readyShows: (readyRevision) => readyRevision !== undefined && readyRevision > entryRevision,
        checkOnChange: false,
        // Marks the barrier ready once it finds every participant in: then it has passed.
        check: async () =>
          ((await this.markReadyIfAllIn(ownKey, entryRevision, known())) ?? 0) > entryRevision,
        checkFirst: counted >= this.count,
        // Only the participant whose arrival completed the count owes the ready key; it tries until written.
        pollMs: counted >= this.count ? this.session.ttlMs / 3 : undefined,
        progress: async () => {
          const { names } = await this.waiters.read();
          return `${names.length} of ${this.count} arrived (${listNames(names)})`;
        },
      });
    } catch (error) {
      // An abort or a timeout that raced the gathering's completion does not undo it: passed.
      if (!(this.session.active && (await this.readyAfter(entryRevision)))) {
        await this.withdraw(ownKey);
        throw error;
      }
    }
    this.logger.info("passed barrier");
  }

  /** Removes this participant and waits until every participant has left. */
  async leave(options: BarrierWaitOptions = {}): Promise<void> {
    const signal = anySignal([options.signal]);
    signal.throwIfAborted();
    const left = await this.client.kv.txn(
      {
        compare: [],
        success: [
          { request_delete_range: { key: Buffer.from(this.keys.waiter(this.name)) } },
          this.waiters.countOp(),
        ],
        failure: [],
      },
      requestDeadline(),
    );
    const remaining = Number(left.responses[1]?.response_range?.count ?? 0);
    const counts = { stalled: 0 };
    // The departure's own count serves the first check (later ones count again).
    const known = firstOnly(remaining);
    this.logger.info("leaving barrier");
    await this.waitFor(signal, options.timeoutMs, {
      // The ready key's deletion is the last leaver's word; whether everyone left is read, not taken on trust.
      readyShows: () => false,
      checkOnChange: true,
      check: async () => !(await this.waiters.anyLeft(counts, known())),
      checkFirst: true,
      pollMs: this.session.ttlMs,
      progress: async () => {
        const { names } = await this.waiters.read();
        return `${names.length} still to leave (${listNames(names)})`;
      },
    });
    await this.waiters.clearReady();
    this.logger.info({ lastOut: remaining === 0 }, "left barrier");
  }

  /**
   * Whether the ready key was written after `revision`; a failed read is tried again a few times (a
   * participant that was in a completed gathering must not count itself out for one lost answer).
   */
  private async readyAfter(revision: number): Promise<boolean> {
    const backoff = exponentialBackoff({ initialMs: 100, maxMs: 1_000 });
    for (let attempt = 1; ; attempt++) {
      try {
        const ready = await this.client.get(this.keys.ready).options(requestDeadline()).exec();
        return Number(ready.kvs[0]?.mod_revision ?? 0) > revision;
      } catch (error) {
        if (attempt >= READY_READS || !this.session.active) return false;
        this.logger.debug({ err: error }, "cannot read the ready key; trying again");
        await delay(backoff.next());
      }
    }
  }

  /**
   * Counts the waiters (unless `known`, a count just made) and, if every participant is in (by their leases), marks the barrier ready
   * while this participant is still in and the ready key is as read: the revision of a ready key that
   * lets this participant pass, or undefined.
   */
  private async markReadyIfAllIn(
    ownKey: string,
    entryRevision: number,
    known?: number,
  ): Promise<number | undefined> {
    if ((known ?? (await this.waiters.count())) < this.count) return undefined;
    const { names, readyRevision } = await this.waiters.read();
    if (readyRevision > entryRevision) return readyRevision;
    if (names.length < this.count) return undefined;
    return this.waiters.markReady(ownKey, entryRevision, readyRevision, names.length);
  }

  /** Names of the participants now in the barrier, in arrival order. */
  async participants(): Promise<string[]> {
    const response = await this.client
      .getAll()
      .prefix(this.keys.waitersPrefix)
      .sort("Create", "Ascend")
      .options(requestDeadline())
      .exec();
    return response.kvs.flatMap((kv) => participantOf(this.keys, kv) ?? []);
  }

  /** Best effort: a participant that gave up must not be counted as arrived. */
  private async withdraw(ownKey: string): Promise<void> {
    if (!this.session.active) return; // the lease took the key with it
    try {
      await this.client.delete().key(ownKey).options(requestDeadline()).exec();
    } catch (error) {
      this.logger.warn({ err: error }, "could not withdraw from the barrier; the lease will remove the key");
    }
  }

  private waitFor(
    signal: AbortSignal,
    timeoutMs: number | undefined,
    wait: Omit<BarrierWait, "readyKey" | "label">,
  ): Promise<void> {
    const pollMs = wait.pollMs === undefined ? undefined : Math.max(MIN_POLL_MS, wait.pollMs);
    const full = { ...wait, readyKey: this.keys.ready, pollMs, label: this.keys.prefix };
    return waitForBarrier(this.client, this.logger, full, signal, timeoutMs);
  }
}

/** The first-start gathering under `keys.barrierPrefix`: the expected workers plus the leader. */
export function gatheringBarrier(options: {
  client: Etcd3;
  keys: KeyLayout;
  name: string;
  expectedWorkers: number;
  session: LeaseSession;
  logger?: Logger;
}): DoubleBarrier {
  return new DoubleBarrier({
    client: options.client,
    prefix: options.keys.barrierPrefix,
    name: options.name,
    count: options.expectedWorkers + 1,
    session: options.session,
    logger: options.logger,
  });
}

/** `value` at the first call, undefined at every later one (a count made once serves one check). */
function firstOnly(value: number): () => number | undefined {
  let left = true;
  return () => {
    if (!left) return undefined;
    left = false;
    return value;
  };
}

function anySignal(signals: Array<AbortSignal | undefined>): AbortSignal {
  return AbortSignal.any(signals.filter((signal): signal is AbortSignal => signal !== undefined));
}

function listNames(names: string[]): string {
  if (names.length === 0) return "none";
  const shown = names.slice(0, MAX_NAMES).join(", ");
  return names.length > MAX_NAMES ? `${shown}, and ${names.length - MAX_NAMES} more` : shown;
}
