import type { Etcd3 } from "etcd3";
import { gatheringBarrier } from "../barrier/index.js";
import { EschedulerError } from "../errors.js";
import { type KeyLayout, type LeaseSession, type Logger } from "../node/index.js";
import { delay, exponentialBackoff, unlessAborted } from "../runtime/index.js";
import { PrefixWatcher } from "../watcher/index.js";

export interface FirstStartOptions {
  client: Etcd3;
  keys: KeyLayout;
  name: string;
  /** Workers the gathering waits for; 0 skips it. */
  expectedWorkers: number;
  lease: LeaseSession;
  logger: Logger;
  /** Ends the wait (the lease is lost or the worker stops). */
  signal: AbortSignal;
  setStatus(status: "in_barrier" | "left_barrier"): void;
  /** Whether this worker carries its share now: in the last plan, every task assigned to it running. */
  carriesShare(): Promise<boolean>;
  /** Resolves at the next change that may affect `carriesShare`. */
  nextChange(): Promise<void>;
}

/**
 * The first start of a fleet, from one worker's side: gather with the others, run the first
 * assignment, then leave together. etcd failures are retried (the tasks keep running meanwhile);
 * a fleet that has already gathered is not waited for.
 */
export async function passFirstStart(options: FirstStartOptions): Promise<void> {
  const backoff = exponentialBackoff({ initialMs: 200, maxMs: 5_000 });
  for (;;) {
    try {
      await gather(options);
      return;
    } catch (error) {
      if (options.signal.aborted) throw error;
      const wait = backoff.next();
      options.logger.warn({ err: error, retryInMs: wait }, "barrier step failed; retrying");
      await delay(wait, options.signal);
    }
  }
}

async function gather(options: FirstStartOptions): Promise<void> {
  const { client, keys, logger, signal } = options;
  if (options.expectedWorkers <= 0) {
    options.setStatus("left_barrier");
    return;
  }
  const barrier = gatheringBarrier({
    client,
    keys,
    name: options.name,
    expectedWorkers: options.expectedWorkers,
    session: options.lease,
    logger,
  });
  // The marker's watch answers both whether the fleet has already gathered and, later, whether the
  // master gave up waiting after its barrier timeout: stop waiting then too.
  const marker = new PrefixWatcher(client, keys.barrierLeft, { logger });
  const markerSet = new AbortController();
  marker.on("change", (change) => {
    if (change.type === "put") markerSet.abort(new EschedulerError("ERR_ABORTED", "the fleet has gathered"));
  });
  try {
    if ((await marker.start(signal)).size > 0) {
      options.setStatus("left_barrier");
      return;
    }
    options.setStatus("in_barrier");
    await barrier.enter({ signal: AbortSignal.any([signal, markerSet.signal]) });
  } catch (error) {
    if (signal.aborted || !markerSet.signal.aborted) throw error;
    logger.info("the fleet gathered without this worker; skipping the barrier");
    options.setStatus("left_barrier");
    return;
  } finally {
    await marker.close();
  }
  logger.info("gathered; waiting to run the first assignment before leaving the barrier");
  await untilCarryingShare(options);
  await barrier.leave({ signal });
  options.setStatus("left_barrier");
}

async function untilCarryingShare(options: FirstStartOptions): Promise<void> {
  for (;;) {
    options.signal.throwIfAborted();
    const changed = options.nextChange();
    if (await options.carriesShare()) return;
    await unlessAborted(changed, options.signal);
  }
}
