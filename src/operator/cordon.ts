import { CompareResult, CompareTarget, type Etcd3 } from "etcd3";
import { EschedulerError } from "../errors.js";
import { type Controls, type Cordons, readControls as readMasterControls } from "../master/controls.js";
import {
  assertValidName,
  type CordonRecord,
  cordonRecordSchema,
  keyLayout,
  readRecord,
  repairCordonRecord,
  silentLogger,
} from "../node/index.js";
import { type ActorOptions, actorOf, auditOps, writeAudit } from "./audit.js";

/**
 * Marks `worker` as taking nothing new while keeping its tasks; refuses an unregistered worker
 * (ERR_UNKNOWN_WORKER). Who and why go into the record and the audit trail.
 */
export function cordon(
  client: Etcd3,
  root: string,
  worker: string,
  options: ActorOptions = {},
): Promise<CordonRecord> {
  return setCordon(client, root, worker, "cordon", options);
}

/** Marks `worker` as draining: the leader hands its tasks off and gives it nothing new; it stays registered. */
export function drain(
  client: Etcd3,
  root: string,
  worker: string,
  options: ActorOptions = {},
): Promise<CordonRecord> {
  return setCordon(client, root, worker, "drain", options);
}

/**
 * Removes a cordon or drain; resolves with the record it removed (undefined when there was none). A
 * worker neither registered nor cordoned is refused (ERR_UNKNOWN_WORKER).
 */
export async function uncordon(
  client: Etcd3,
  root: string,
  worker: string,
  options: ActorOptions = {},
): Promise<CordonRecord | undefined> {
  assertValidName("worker name", worker);
  const keys = keyLayout(root);
  const audit = { at: new Date().toISOString(), action: "uncordon", worker, ...actorOf(options) };
  const removeRecord = { request_delete_range: { key: Buffer.from(keys.cordon(worker)), prev_kv: true } };
  const response = await client.kv.txn({
    compare: [
      {
        key: Buffer.from(keys.worker(worker)),
        target: CompareTarget.Version,
        result: CompareResult.Greater,
        version: "0",
      },
    ],
    success: [removeRecord, ...(await auditOps(client, keys, audit))],
    failure: [removeRecord],
  });
  const previous = response.responses[0]?.response_delete_range?.prev_kvs[0];
  if (!response.succeeded && !previous) throw unknownWorker(worker, root);
  if (!response.succeeded) await writeAudit(client, keys, audit);
  return previous
    ? readRecord(cordonRecordSchema, keys.cordon(worker), previous.value, silentLogger, {
        repair: repairCordonRecord,
      })
    : undefined;
}

/** Every cordon/drain record and draining mark under the root. */
export async function readCordons(client: Etcd3, root: string): Promise<Cordons> {
  return (await readControls(client, root)).cordons;
}

/** Every cordon/drain record and draining mark under the root, and the pause record, read at one revision. */
export function readControls(client: Etcd3, root: string): Promise<Controls> {
  return readMasterControls(client, keyLayout(root));
}

async function setCordon(
  client: Etcd3,
  root: string,
  worker: string,
  mode: CordonRecord["mode"],
  options: ActorOptions,
): Promise<CordonRecord> {
  assertValidName("worker name", worker);
  const keys = keyLayout(root);
  const actor = actorOf(options);
  const record: CordonRecord = { mode, ...actor, at: new Date().toISOString() };
  const response = await client.kv.txn({
    compare: [
      {
        key: Buffer.from(keys.worker(worker)),
        target: CompareTarget.Version,
        result: CompareResult.Greater,
        version: "0",
      },
    ],
    success: [
      { request_put: { key: Buffer.from(keys.cordon(worker)), value: Buffer.from(JSON.stringify(record)) } },
      ...(await auditOps(client, keys, { at: record.at, action: mode, worker, ...actor })),
    ],
    failure: [],
  });
  if (!response.succeeded) throw unknownWorker(worker, root);
  return record;
}

function unknownWorker(worker: string, root: string): EschedulerError {
  return new EschedulerError(
    "ERR_UNKNOWN_WORKER",
    `unknown worker ${JSON.stringify(worker)}: no worker of that name is registered under /${root}/`,
  );
}
