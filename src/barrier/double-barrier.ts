import { CompareResult, CompareTarget, type Etcd3, type IRequestOp } from "etcd3";
import { EschedulerError } from "../errors.js";
import {
  type DoubleBarrierKeys,
  doubleBarrierKeys,
  type KeyLayout,
  type LeaseSession,
  type Logger,
  prefixRangeEnd,
  requestDeadline,
  silentLogger,
} from "../node/index.js";
import { type BarrierWait, waitForBarrier } from "./barrier-wait.js";

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
/** A leave reads the names still in only when this few are (more: some are left, the count says so). */
const FEW_LEFT = 16;
/** And every this many checks whatever the count. */
const READ_ALL_EVERY = 8;
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
 * reading the waiters' leases: a key written by hand without a lease is no participant; it tries again
 * until it has), the one whose departure empties the barrier deletes it, and each wakes everyone with
 * one event. A participant that crashes before its word is like any other that crashed: the gathering
 * waits for its replacement, whose arrival completes it. Participants leaving count again once per
 * lease TTL, so one that crashed instead of leaving (its key gone with its lease) holds nobody.
 */
export class DoubleBarrier {
  private readonly client: Etcd3;
  private readonly keys: DoubleBarrierKeys;
  private readonly name: string;
  private readonly count: number;
  private readonly session: LeaseSession;
  private readonly logger: Logger;
  private readonly reported = new Set<string>();
  /** Waiter keys without a lease the last read of the waiters found. */
  private leaseless = 0;

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
          this.countWaiters(),
        ],
        failure: [],
      },
      requestDeadline(),
    );
    const entryRevision = Number(entered.header.revision);
    const counted = Number(entered.responses[1]?.response_range?.count ?? 0);
    this.logger.info({ count: this.count }, "entered barrier");
    try {
      await this.waitFor(signal, options.timeoutMs, {
        readyShows: (readyRevision) => readyRevision !== undefined && readyRevision > entryRevision,
        checkOnChange: false,
        // Marks the barrier ready once it finds every participant in: then it has passed.
        check: async () => ((await this.markReadyIfAllIn()) ?? 0) > entryRevision,
        checkFirst: counted >= this.count,
        // Only the participant whose arrival completed the count owes the ready key; it tries until written.
        pollMs: counted >= this.count ? this.session.ttlMs / 3 : undefined,
        progress: async () => {
          const waiters = await this.leasedWaiters();
          return `${waiters.length} of ${this.count} arrived (${listNames(waiters)})`;
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
          this.countWaiters(),
        ],
        failure: [],
      },
      requestDeadline(),
    );
    const remaining = Number(left.responses[1]?.response_range?.count ?? 0);
    let checks = 0;
    this.logger.info("leaving barrier");
    await this.waitFor(signal, options.timeoutMs, {
      // The ready key's deletion is the last leaver's word; whether everyone left is read, not taken on trust.
      readyShows: () => false,
      checkOnChange: true,
      // Every few checks the leases are read whatever the count (keys written by hand may make it up).
      check: async () => !(await this.anyLeft(++checks % READ_ALL_EVERY === 0)),
      checkFirst: true,
      pollMs: this.session.ttlMs,
      progress: async () => {
        const waiters = await this.leasedWaiters();
        return `${waiters.length} still to leave (${listNames(waiters)})`;
      },
    });
    await this.clearReady();
    this.logger.info({ lastOut: remaining === 0 }, "left barrier");
  }

  /** Whether the ready key was written after `revision` (false when it cannot be read). */
  private async readyAfter(revision: number): Promise<boolean> {
    try {
      const ready = await this.client.get(this.keys.ready).options(requestDeadline()).exec();
      return Number(ready.kvs[0]?.mod_revision ?? 0) > revision;
    } catch {
      return false;
    }
  }

  /** Names of the participants now in the barrier, in arrival order. */
  async participants(): Promise<string[]> {
    const response = await this.client
      .getAll()
      .prefix(this.keys.waitersPrefix)
      .sort("Create", "Ascend")
      .options(requestDeadline())
      .exec();
    return response.kvs.flatMap((kv) =>
      kv.lease === "0" ? [] : (this.keys.parseWaiter(kv.key.toString()) ?? []),
    );
  }

  /** How many keys are under the waiters' prefix (leaseless ones included): a read that returns a number. */
  private countWaiters(): IRequestOp {
    const prefix = this.keys.waitersPrefix;
    return {
      request_range: { key: Buffer.from(prefix), range_end: prefixRangeEnd(prefix), count_only: true },
    };
  }

  /** How many keys are under the waiters' prefix now (leaseless ones included). */
  private async countNow(): Promise<number> {
    const counted = await this.client.kv.txn(
      { compare: [], success: [this.countWaiters()], failure: [] },
      requestDeadline(),
    );
    return Number(counted.responses[0]?.response_range?.count ?? 0);
  }

  /**
   * Whether a participant is still in. A count says so while it is large; a small one (or `readAll`)
   * reads the leases too: a key written by hand without a lease is no participant, and may be all that
   * is left (once such keys were seen, a count is small with them added).
   */
  private async anyLeft(readAll: boolean): Promise<boolean> {
    const count = await this.countNow();
    if (count === 0) return false;
    if (count > FEW_LEFT + this.leaseless && !readAll) return true;
    return (await this.leasedWaiters()).length > 0;
  }

  /** The participants in now (waiters under a lease), sorted. */
  private async leasedWaiters(): Promise<string[]> {
    const range = {
      key: Buffer.from(this.keys.waitersPrefix),
      range_end: prefixRangeEnd(this.keys.waitersPrefix),
    };
    const response = await this.client.kv.range({ ...range, keys_only: true }, requestDeadline());
    const names: string[] = [];
    this.leaseless = 0;
    for (const kv of response.kvs) {
      const key = kv.key.toString();
      const name = this.keys.parseWaiter(key);
      if (name === undefined) continue;
      if (kv.lease !== "0") names.push(name);
      else {
        this.leaseless++;
        this.reportLeaseless(key);
      }
    }
    return names.sort();
  }

  /** Counts the waiters and, if every participant is in, marks the barrier ready: the ready key's revision, or undefined. */
  private async markReadyIfAllIn(): Promise<number | undefined> {
    if ((await this.countNow()) < this.count) return undefined;
    const waiters = await this.leasedWaiters();
    if (waiters.length < this.count) return undefined;
    const marked = await this.client
      .put(this.keys.ready)
      .value(JSON.stringify({ at: new Date().toISOString(), participants: waiters.length }))
      .options(requestDeadline())
      .exec();
    this.logger.debug({ waiters: waiters.length }, "barrier complete; marked ready");
    return Number(marked.header.revision);
  }

  private reportLeaseless(key: string): void {
    if (this.reported.has(key)) return;
    this.reported.add(key);
    this.logger.warn({ key, action: "ignored" }, "barrier waiter without a lease");
  }

  /** Deletes the ready key once no waiter is left, so the next round starts clean. */
  private async clearReady(): Promise<void> {
    const waitersPrefix = Buffer.from(this.keys.waitersPrefix);
    await this.client.kv
      .txn(
        {
          // A range compare holds for every key in it; with none left it compares a zero version.
          compare: [
            {
              key: waitersPrefix,
              range_end: prefixRangeEnd(this.keys.waitersPrefix),
              target: CompareTarget.Version,
              result: CompareResult.Equal,
              version: "0",
            },
          ],
          success: [{ request_delete_range: { key: Buffer.from(this.keys.ready) } }],
          failure: [],
        },
        requestDeadline(),
      )
      .catch((error: unknown) => this.logger.debug({ err: error }, "could not clear the ready key"));
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

function anySignal(signals: Array<AbortSignal | undefined>): AbortSignal {
  return AbortSignal.any(signals.filter((signal): signal is AbortSignal => signal !== undefined));
}

function listNames(names: string[]): string {
  if (names.length === 0) return "none";
  const shown = names.slice(0, MAX_NAMES).join(", ");
  return names.length > MAX_NAMES ? `${shown}, and ${names.length - MAX_NAMES} more` : shown;
}
