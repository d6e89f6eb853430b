/** Per-task operator actions: restart and move (carried out by the leader), pin and unpin (records the leader obeys). */
import { CompareResult, CompareTarget, type Etcd3 } from "etcd3";
import { EschedulerError } from "../errors.js";
import {
  assertValidName,
  keyLayout,
  type Logger,
  type PinRecord,
  pinRecordSchema,
  prefixRange,
  readRecord,
  requestDeadline,
  type ScheduleOutcome,
  silentLogger,
} from "../node/index.js";
import { parsePins } from "../master/pins.js";
import { type ActorOptions, actorOf, auditOps, writeAudit } from "./audit.js";
import { requestTaskAction } from "./request.js";

export interface TaskActionOptions extends ActorOptions {
  /** How long to wait for the leader's answer; default 30 s. */
  timeoutMs?: number;
}

/**
 * Stops the task and starts it again on the worker that runs it (the start waits until the stop has
 * returned); no other task is touched. Resolves with the leader's outcome: refused when the task is
 * not assigned or moves in that schedule.
 */
export function restartTask(
  client: Etcd3,
  root: string,
  taskId: string,
  options: TaskActionOptions = {},
): Promise<ScheduleOutcome> {
  assertValidName("task id", taskId);
  return requestTaskAction(client, root, { kind: "restart", task: taskId }, options);
}

/**
 * Moves the task to `to` through the leader's hand-off gate (the old owner stops it before the new one
 * starts): exactly one move. Refused when `to` is not registered, cordoned or draining, does not match
 * the task's selector, or the task is pinned elsewhere or shares an affinity key.
 */
export function moveTask(
  client: Etcd3,
  root: string,
  taskId: string,
  to: string,
  options: TaskActionOptions = {},
): Promise<ScheduleOutcome> {
  assertValidName("task id", taskId);
  assertValidName("worker name", to);
  return requestTaskAction(client, root, { kind: "move", task: taskId, to }, options);
}

/**
 * Pins the task to `worker`: while that worker is eligible for it (registered, not draining, not
 * cordoned unless it holds the task already, matching its selector) every leader keeps or puts it
 * there; otherwise the pin is ignored and the reason shown by `status`. Refuses an unregistered
 * worker (ERR_UNKNOWN_WORKER). The pin has no lease: it survives leader changes until `unpinTask`.
 */
export async function pinTask(
  client: Etcd3,
  root: string,
  taskId: string,
  worker: string,
  options: ActorOptions = {},
): Promise<PinRecord> {
  assertValidName("task id", taskId);
  assertValidName("worker name", worker);
  const keys = keyLayout(root);
  const actor = actorOf(options);
  const record: PinRecord = { worker, at: new Date().toISOString(), ...actor };
  const response = await client.kv.txn(
    {
      compare: [
        {
          key: Buffer.from(keys.worker(worker)),
          target: CompareTarget.Version,
          result: CompareResult.Greater,
          version: "0",
        },
      ],
      success: [
        { request_put: { key: Buffer.from(keys.pin(taskId)), value: Buffer.from(JSON.stringify(record)) } },
        ...(await auditOps(client, keys, {
          at: record.at,
          action: "task pin",
          task: taskId,
          to: worker,
          ...actor,
        })),
      ],
      failure: [],
    },
    requestDeadline(),
  );
  if (!response.succeeded) {
    throw new EschedulerError(
      "ERR_UNKNOWN_WORKER",
      `unknown worker ${JSON.stringify(worker)}: no worker of that name is registered under /${root}/`,
    );
  }
  return record;
}

/** Removes the task's pin; resolves with the pin it removed (undefined when there was none). */
export async function unpinTask(
  client: Etcd3,
  root: string,
  taskId: string,
  options: ActorOptions = {},
): Promise<PinRecord | undefined> {
  assertValidName("task id", taskId);
  const keys = keyLayout(root);
  const audit = { at: new Date().toISOString(), action: "task unpin", task: taskId, ...actorOf(options) };
  const response = await client.kv.deleteRange({ key: Buffer.from(keys.pin(taskId)), prev_kv: true });
  const previous = response.prev_kvs[0];
  if (!previous) return undefined;
  await writeAudit(client, keys, audit);
  return readRecord(pinRecordSchema, keys.pin(taskId), previous.value, silentLogger);
}

/** Every pin under the root: task id → record (bad records skipped with one warning). */
export async function readPins(
  client: Etcd3,
  root: string,
  logger: Logger = silentLogger,
): Promise<Map<string, PinRecord>> {
  const keys = keyLayout(root);
  const response = await client.kv.range(prefixRange(keys.pinsPrefix), requestDeadline());
  return parsePins(keys, response.kvs, logger);
}
