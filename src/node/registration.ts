import type { Etcd3, IRangeResponse } from "etcd3";
import { EschedulerError } from "../errors.js";
import { delay, exponentialBackoff } from "./backoff.js";
import { type KeyLayout, prefixRangeEnd } from "./keys.js";
import type { LeaseSession } from "./lease-session.js";
import { type Logger, silentLogger } from "./logger.js";

/** The value of `/R/worker/<name>`. */
export interface WorkerInfo {
  name: string;
  host: string;
  pid: number;
  version: string;
  startedAt: string;
  capacity?: number;
}

export interface RegistrationOptions {
  client: Etcd3;
  keys: KeyLayout;
  session: LeaseSession;
  info: WorkerInfo;
  /** Most workers registered at once; 0 for no cap. */
  maxWorkers: number;
}

/**
 * Writes `/R/worker/<name>` under the session's lease, atomically enforcing the worker cap: the
 * transaction succeeds only if no registration changed since the count was read and the name is free.
 * Throws ERR_WORKER_CAP when the cap is reached, ERR_NAME_TAKEN when a live process holds the name.
 */
export async function registerWorker(options: RegistrationOptions): Promise<void> {
  const { client, keys, session, info, maxWorkers } = options;
  const ownKey = keys.worker(info.name);
  const prefix = keys.workersPrefix;
  const range = { key: Buffer.from(prefix), range_end: prefixRangeEnd(prefix) };
  let snapshot: Pick<IRangeResponse, "header" | "kvs"> = await client.getAll().prefix(prefix).exec();
  for (;;) {
    const revision = Number(snapshot.header.revision);
    const registered = snapshot.kvs.map((kv) => kv.key.toString().slice(prefix.length));
    const own = snapshot.kvs.find((kv) => kv.key.toString() === ownKey);
    if (own) {
      if (own.lease === session.id) return;
      throw new EschedulerError(
        "ERR_NAME_TAKEN",
        `worker name ${JSON.stringify(info.name)} is already registered by a live process (${own.value.toString()})`,
      );
    }
    if (maxWorkers > 0 && registered.length >= maxWorkers) {
      throw new EschedulerError(
        "ERR_WORKER_CAP",
        `worker cap reached: ${registered.length} of ${maxWorkers} registered (${registered.slice(0, 10).join(", ")})`,
      );
    }
    const result = await client.kv.txn({
      compare: [
        // No registration was added or changed since the read: the count above is still true.
        {
          ...range,
          target: "Mod",
          result: "Less",
          mod_revision: revision + 1,
        },
        { key: Buffer.from(ownKey), target: "Create", result: "Equal", create_revision: 0 },
      ],
      success: [
        {
          request_put: {
            key: Buffer.from(ownKey),
            value: Buffer.from(JSON.stringify(info)),
            lease: session.id,
          },
        },
      ],
      // Lost the race: the registrations as they are now come back with the refusal, saving a read.
      failure: [{ request_range: range }],
    });
    if (result.succeeded) return;
    snapshot = { header: result.header, kvs: result.responses[0]?.response_range?.kvs ?? [] };
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
