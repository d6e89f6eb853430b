import type { Etcd3, IKeyValue, IRequestOp, IResponseOp } from "etcd3";
import { EschedulerError } from "../errors.js";
import { delay, exponentialBackoff, unlessAborted } from "../runtime/index.js";
import { type KeyLayout, prefixRangeEnd } from "./keys.js";
import type { LeaseSession } from "./lease-session.js";
import { type Logger, silentLogger } from "./logger.js";
import { hasLease, type WorkerInfo } from "./records.js";

export type { WorkerInfo };

export interface RegistrationOptions {
  client: Etcd3;
  keys: KeyLayout;
  session: LeaseSession;
  info: WorkerInfo;
  /** Most workers registered at once; 0 for no cap. */
  maxWorkers: number;
  /** Where a registration or slot written by hand without a lease is reported (once) and taken over. */
  logger?: Logger;
}

/** ERR_NAME_TAKEN: another registration of the name holds it, under `holderLease`. */
export class NameTakenError extends EschedulerError {
  constructor(
    message: string,
    readonly holderLease: string,
  ) {
    super("ERR_NAME_TAKEN", message);
  }
}

/**
 * Writes `/R/worker/<name>` under the session's lease if the name is free. With a cap, the same
 * transaction also claims a free slot `/R/slot/<i>` (i < cap) under the lease: only cap slots exist,
 * so at most cap workers are registered, and racers contend only when they pick the same slot — the
 * cost does not grow with the number of registrants (no compare over the whole registration range).
 * Throws ERR_WORKER_CAP when every slot is taken, ERR_NAME_TAKEN when a live process holds the name.
 */
export async function registerWorker(options: RegistrationOptions): Promise<void> {
  const { client, keys, session, info, maxWorkers } = options;
  const logger = options.logger ?? silentLogger;
  const ownKey = Buffer.from(keys.worker(info.name));
  const slotsRange = {
    key: Buffer.from(keys.workerSlotsPrefix),
    range_end: prefixRangeEnd(keys.workerSlotsPrefix),
  };
  const readOwn: IRequestOp = { request_range: { key: ownKey } };
  const readSlots: IRequestOp = { request_range: { ...slotsRange } };
  // Uncapped: one create-if-absent. Capped: read the name and the slots first (one small txn), then claim one.
  let seen: { own?: IKeyValue; slots: IKeyValue[] } = { slots: [] };
  if (maxWorkers > 0) {
    const read = await client.kv.txn({ compare: [], success: [readOwn, readSlots], failure: [] });
    seen = rangesOf(read.responses);
  }
  for (;;) {
    // A key without a lease was written by hand: it would never expire, so it does not hold the name.
    if (seen.own && hasLease(seen.own, logger)) {
      if (seen.own.lease === session.id) return;
      throw new NameTakenError(
        `worker name ${JSON.stringify(info.name)} is already registered by a live process (${seen.own.value.toString()})`,
        seen.own.lease,
      );
    }
    const slot = maxWorkers > 0 ? pickFreeSlot(keys, seen.slots, maxWorkers, logger) : undefined;
    if (maxWorkers > 0 && slot === undefined) throw capReached(keys, seen.slots, maxWorkers, logger);
    // Lease 0: the key is absent, or written by hand without a lease (then taken over).
    const compare = [{ key: ownKey, target: "Lease" as const, result: "Equal" as const, lease: 0 }];
    const success: IRequestOp[] = [
      { request_put: { key: ownKey, value: Buffer.from(JSON.stringify(info)), lease: session.id } },
      // A left mark of an earlier process of this name is over: a crash of this one must be held.
      { request_delete_range: { key: Buffer.from(keys.left(info.name)) } },
    ];
    if (slot !== undefined) {
      const slotKey = Buffer.from(keys.workerSlot(slot));
      compare.push({ key: slotKey, target: "Lease", result: "Equal", lease: 0 });
      success.push({ request_put: { key: slotKey, value: Buffer.from(info.name), lease: session.id } });
    }
    // Refused: the name's holder and the slots as they are now come back with the refusal, saving a read.
    const result = await client.kv.txn({
      compare,
      success,
      failure: slot === undefined ? [readOwn] : [readOwn, readSlots],
    });
    if (result.succeeded) return;
    seen = rangesOf(result.responses);
  }
}

function rangesOf(responses: IResponseOp[]): { own?: IKeyValue; slots: IKeyValue[] } {
  return {
    own: responses[0]?.response_range?.kvs[0],
    slots: responses[1]?.response_range?.kvs ?? [],
  };
}

/** A random free slot below the cap (random, so racers rarely pick the same one), or undefined when all are taken. */
function pickFreeSlot(keys: KeyLayout, slots: IKeyValue[], cap: number, logger: Logger): number | undefined {
  // A slot without a lease was written by hand: it holds nothing (and would never expire).
  const taken = new Set(
    slots.filter((kv) => hasLease(kv, logger)).map((kv) => keys.parseWorkerSlot(kv.key.toString())),
  );
  const free: number[] = [];
  for (let i = 0; i < cap; i++) if (!taken.has(i)) free.push(i);
  return free.length === 0 ? undefined : free[Math.floor(Math.random() * free.length)];
}

function capReached(keys: KeyLayout, slots: IKeyValue[], cap: number, logger: Logger): EschedulerError {
  const holders = slots
    .filter((kv) => hasLease(kv, logger) && (keys.parseWorkerSlot(kv.key.toString()) ?? cap) < cap)
    .map((kv) => kv.value.toString());
  return new EschedulerError(
    "ERR_WORKER_CAP",
    `worker cap reached: ${holders.length} of ${cap} registered (${holders.slice(0, 10).join(", ")})`,
  );
}
/**
 * Resolves at once while the lease is trusted, else once it resumes: a suspended lease may already be
 * expiring on etcd, so nothing is registered under it (rejects when the lease ends or `signal` aborts).
 */
async function untilTrusted(session: LeaseSession, signal: AbortSignal, logger: Logger): Promise<void> {
  if (!session.suspended) return;
  logger.warn({ lease: session.id }, "lease suspended: waiting for it to resume before registering");
  let onResumed!: () => void;
  const resumed = new Promise<void>((resolve) => (onResumed = resolve));
  session.once("resumed", onResumed);
  try {
    await unlessAborted(resumed, signal);
  } finally {
    session.off("resumed", onResumed);
  }
}

/**
 * Registers, retrying with backoff while the cap is reached (and, when `retryNameTaken`, while an
 * old registration of the same name has not expired yet), logging why it waits.
 */
export async function registerWhenAdmitted(
  options: RegistrationOptions & {
    signal?: AbortSignal;
    logger?: Logger;
    retryNameTaken?: boolean;
    onWaiting?: (reason: EschedulerError) => void;
  },
): Promise<void> {
  const logger = options.logger ?? silentLogger;
  const backoff = exponentialBackoff({ initialMs: 250, maxMs: 5_000 });
  // A lease lost while waiting ends the wait at once: registering under it can no longer succeed.
  const signal = options.signal
    ? AbortSignal.any([options.signal, options.session.signal])
    : options.session.signal;
  for (;;) {
    signal.throwIfAborted();
    await untilTrusted(options.session, signal, logger);
    try {
      await registerWorker(options);
      return;
    } catch (error) {
      const retryable =
        error instanceof EschedulerError &&
        (error.code === "ERR_WORKER_CAP" || (error.code === "ERR_NAME_TAKEN" && options.retryNameTaken));
      if (!retryable) throw error;
      const wait = backoff.next();
      logger.warn({ reason: error.message, retryInMs: wait }, "registration refused; retrying");
      options.onWaiting?.(error);
      await delay(wait, signal);
    }
  }
}
