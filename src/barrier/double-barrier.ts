import { CompareResult, CompareTarget, type Etcd3 } from "etcd3";
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
import { delay, exponentialBackoff } from "../runtime/index.js";
import { PrefixWatcher } from "../watcher/index.js";

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
const READY_RETRY_MS = 200;

/**
 * A double barrier, after etcd's Go recipe: `enter()` waits until `count` participants are in,
 * `leave()` until all have left. Each participant holds `<prefix>waiters/<name>` under its own lease.
 * Whoever sees `count` waiters writes `<prefix>ready` (no lease), so a crash after that does not revert
 * the barrier; a ready key written before a participant entered (a stale round) does not let it pass.
 */
export class DoubleBarrier {
  private readonly client: Etcd3;
  private readonly keys: DoubleBarrierKeys;
  private readonly name: string;
  private readonly count: number;
  private readonly session: LeaseSession;
  private readonly logger: Logger;
  private readonly reported = new Set<string>();

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
    const entered = await this.session.lease
      .put(ownKey)
      .value(new Date().toISOString())
      .options(requestDeadline())
      .exec();
    const entryRevision = Number(entered.header.revision);
    this.logger.info({ count: this.count }, "entered barrier");
    let readyRequested = false;
    try {
      await this.waitFor(
        signal,
        options.timeoutMs,
        (watcher, recheck) => {
          const readyRevision = watcher.modRevision(this.keys.ready);
          if (readyRevision !== undefined && readyRevision > entryRevision) return true;
          const waiters = this.waiters(watcher);
          if (waiters.length >= this.count && !readyRequested) {
            readyRequested = true;
            this.markReady(waiters).catch((error: unknown) => {
              this.logger.warn({ err: error }, "could not mark the barrier ready; retrying");
              readyRequested = false;
              recheck(READY_RETRY_MS);
            });
          }
          return false;
        },
        (watcher) => {
          const waiters = this.waiters(watcher);
          return `${waiters.length} of ${this.count} arrived (${listNames(waiters)})`;
        },
      );
    } catch (error) {
      await this.withdraw(ownKey);
      throw error;
    }
    this.logger.info("passed barrier");
  }

  /** Removes this participant and waits until every participant has left. */
  async leave(options: BarrierWaitOptions = {}): Promise<void> {
    const signal = anySignal([options.signal]);
    signal.throwIfAborted();
    await this.client.delete().key(this.keys.waiter(this.name)).options(requestDeadline()).exec();
    this.logger.info("leaving barrier");
    await this.waitFor(
      signal,
      options.timeoutMs,
      (watcher) => this.waiters(watcher).length === 0,
      (watcher) => {
        const waiters = this.waiters(watcher);
        return `${waiters.length} still to leave (${listNames(waiters)})`;
      },
    );
    await this.clearReady();
    this.logger.info("left barrier");
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

  /** Participants are keys under a lease: one written by hand without a lease would never leave. */
  private waiters(watcher: PrefixWatcher): string[] {
    const names: string[] = [];
    for (const key of watcher.entries.keys()) {
      const name = this.keys.parseWaiter(key);
      if (name === undefined) continue;
      if (watcher.hasLease(key)) names.push(name);
      else this.reportLeaseless(key);
    }
    return names.sort();
  }

  private reportLeaseless(key: string): void {
    if (this.reported.has(key)) return;
    this.reported.add(key);
    this.logger.warn({ key, action: "ignored" }, "barrier waiter without a lease");
  }

  private async markReady(waiters: string[]): Promise<void> {
    await this.client
      .put(this.keys.ready)
      .value(JSON.stringify({ at: new Date().toISOString(), participants: waiters }))
      .options(requestDeadline())
      .exec();
    this.logger.debug({ waiters: waiters.length }, "barrier complete; marked ready");
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

  /**
   * Watches the barrier's keys until `passed` returns true. `passed` may ask to be called again after
   * a delay (`recheck`). Throws ERR_BARRIER_TIMEOUT with `progress` after `timeoutMs`, or the abort reason.
   */
  private async waitFor(
    signal: AbortSignal,
    timeoutMs: number | undefined,
    passed: (watcher: PrefixWatcher, recheck: (afterMs: number) => void) => boolean,
    progress: (watcher: PrefixWatcher) => string,
  ): Promise<void> {
    const watcher = new PrefixWatcher(this.client, this.keys.prefix, { logger: this.logger });
    const timers = new Set<NodeJS.Timeout>();
    const finished = new AbortController();
    const stop = AbortSignal.any([signal, finished.signal]);
    let onAbort: (() => void) | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        let settled = false;
        const settle = (error?: unknown) => {
          if (settled) return;
          settled = true;
          if (error === undefined) resolve();
          else reject(error);
        };
        const evaluate = () => {
          if (settled) return;
          try {
            if (passed(watcher, recheck)) settle();
          } catch (error) {
            settle(error);
          }
        };
        const recheck = (afterMs: number) => {
          const timer = setTimeout(() => {
            timers.delete(timer);
            evaluate();
          }, afterMs);
          timers.add(timer);
        };
        onAbort = () => settle(abortReason(signal));
        if (signal.aborted) return onAbort();
        signal.addEventListener("abort", onAbort, { once: true });
        if (timeoutMs !== undefined) {
          timers.add(
            setTimeout(() => {
              settle(
                new EschedulerError(
                  "ERR_BARRIER_TIMEOUT",
                  `barrier ${this.keys.prefix}: ${progress(watcher)} after ${timeoutMs}ms`,
                ),
              );
            }, timeoutMs),
          );
        }
        watcher.on("change", evaluate);
        watcher.on("resync", evaluate);
        const startWatching = async (): Promise<void> => {
          const backoff = exponentialBackoff({ initialMs: 100, maxMs: 2_000 });
          while (!settled) {
            try {
              await watcher.start(stop);
              return evaluate();
            } catch (error) {
              if (stop.aborted) return;
              this.logger.warn({ err: error }, "cannot read the barrier yet; retrying");
              await delay(backoff.next(), stop).catch(() => undefined);
            }
          }
        };
        void startWatching();
      });
    } finally {
      finished.abort();
      if (onAbort) signal.removeEventListener("abort", onAbort);
      for (const timer of timers) clearTimeout(timer);
      await watcher.close();
    }
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

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new EschedulerError("ERR_ABORTED", "barrier wait aborted");
}

function listNames(names: string[]): string {
  if (names.length === 0) return "none";
  const shown = names.slice(0, MAX_NAMES).join(", ");
  return names.length > MAX_NAMES ? `${shown}, and ${names.length - MAX_NAMES} more` : shown;
}
