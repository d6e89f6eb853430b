import type { Etcd3, IKeyValue, IRequestOp, IResponseOp, ITxnResponse } from "etcd3";
import { EschedulerError } from "../errors.js";
import { delay, exponentialBackoff, unlessAborted } from "../runtime/index.js";
import type { KeyLayout } from "./keys.js";
import type { LeaseSession } from "./lease-session.js";
import { type Logger, silentLogger } from "./logger.js";
import { hasLease, type WorkerInfo } from "./records.js";
import { SlotSearch } from "./slot-search.js";

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
 * so at most cap workers are registered, and racers contend only when they pick the same slot. The
 * first claim reads nothing; a refused one brings back the name's holder and a small window of slots
 * (`SlotSearch`), so a registrant reads a few slots, not all of them, unless nearly all are taken.
 * Resolves with a revision at which the registration was under the session's lease. Throws
 * ERR_WORKER_CAP when a read of every slot shows them all taken, ERR_NAME_TAKEN when a live process
 * holds the name.
 */
export async function registerWorker(options: RegistrationOptions): Promise<number> {
  const { client, keys, session, info, maxWorkers } = options;
  const logger = options.logger ?? silentLogger;
  const ownKey = Buffer.from(keys.worker(info.name));
  const readOwn: IRequestOp = { request_range: { key: ownKey } };
  const search = maxWorkers > 0 ? new SlotSearch(keys, maxWorkers, logger) : undefined;
  let slot = search?.first();
  for (;;) {
    let answer: ITxnResponse;
    if (search && slot === undefined) {
      // The window read had no free slot: read the next one (or every slot).
      search.advance();
      answer = await client.kv.txn({ compare: [], success: [readOwn, ...search.reads()], failure: [] });
    } else {
      // Lease 0: the key is absent, or written by hand without a lease (then taken over).
      const compare = [{ key: ownKey, target: "Lease" as const, result: "Equal" as const, lease: 0 }];
      const success: IRequestOp[] = [
        {
          request_put: {
            key: ownKey,
            value: Buffer.from(JSON.stringify(info)),
            lease: session.id,
            prev_kv: true,
          },
        },
        // A left mark of an earlier process of this name is over: a crash of this one must be held.
        { request_delete_range: { key: Buffer.from(keys.left(info.name)) } },
      ];
      if (slot !== undefined) {
        const slotKey = Buffer.from(keys.workerSlot(slot));
        compare.push({ key: slotKey, target: "Lease", result: "Equal", lease: 0 });
        success.push({
          request_put: { key: slotKey, value: Buffer.from(info.name), lease: session.id, prev_kv: true },
        });
      }
      // Refused: the name's holder and the window's slots as they are now come back with the refusal.
      answer = await client.kv.txn({ compare, success, failure: [readOwn, ...(search?.reads() ?? [])] });
      if (answer.succeeded) {
        reportTakenOver(answer.responses, logger);
        return Number(answer.header.revision);
      }
    }
    const { responses } = answer;
    // A key without a lease was written by hand: it would never expire, so it does not hold the name.
    const own = responses[0]?.response_range?.kvs[0];
    if (own && hasLease(own, logger)) {
      if (own.lease === session.id) return Number(answer.header.revision);
      throw new NameTakenError(
        `worker name ${JSON.stringify(info.name)} is already registered by a live process (${own.value.toString()})`,
        own.lease,
      );
    }
    if (!search) continue;
    const slots = responses.slice(1).flatMap((response) => response.response_range?.kvs ?? []);
    slot = search.pick(slots);
    if (slot === undefined && search.whole) throw capReached(keys, slots, maxWorkers, logger);
  }
}

/** Warns (once a key) of a registration or slot written by hand without a lease that a claim took over. */
function reportTakenOver(responses: IResponseOp[], logger: Logger): void {
  for (const response of responses) {
    const previous = response.response_put?.prev_kv;
    if (previous) hasLease(previous, logger);
  }
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
 * old registration of the same name has not expired yet), logging why it waits; resolves as
 * `registerWorker` does.
 */
export async function registerWhenAdmitted(
  options: RegistrationOptions & {
    signal?: AbortSignal;
    logger?: Logger;
    retryNameTaken?: boolean;
    onWaiting?: (reason: EschedulerError) => void;
  },
): Promise<number> {
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
      return await registerWorker(options);
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
