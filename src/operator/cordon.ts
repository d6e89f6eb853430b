import { CompareResult, CompareTarget, type Etcd3, type IRangeResponse } from "etcd3";
import { EschedulerError } from "../errors.js";
import {
  assertValidName,
  type CordonRecord,
  type KeyLayout,
  keyLayout,
  parseRecord,
  prefixRangeEnd,
} from "../node/index.js";

/** The operator's cordon/drain records and the workers' own draining marks, by worker name. */
export interface Cordons {
  records: Map<string, CordonRecord>;
  /** Workers draining themselves (their mark lives under their lease). */
  draining: Set<string>;
}

/** Marks `worker` as taking nothing new while keeping its tasks; refuses an unregistered worker (ERR_UNKNOWN_WORKER). */
export function cordon(
  client: Etcd3,
  root: string,
  worker: string,
  options: { reason?: string } = {},
): Promise<CordonRecord> {
  return setCordon(client, root, worker, "cordon", options.reason);
}

/** Marks `worker` as draining: the leader hands its tasks off and gives it nothing new; it stays registered. */
export function drain(
  client: Etcd3,
  root: string,
  worker: string,
  options: { reason?: string } = {},
): Promise<CordonRecord> {
  return setCordon(client, root, worker, "drain", options.reason);
}

/**
 * Removes a cordon or drain; resolves with the record it removed (undefined when there was none). A
 * worker neither registered nor cordoned is refused (ERR_UNKNOWN_WORKER).
 */
export async function uncordon(
  client: Etcd3,
  root: string,
  worker: string,
): Promise<CordonRecord | undefined> {
  assertValidName("worker name", worker);
  const keys = keyLayout(root);
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
    success: [removeRecord],
    failure: [removeRecord],
  });
  const previous = response.responses[0]?.response_delete_range?.prev_kvs[0];
  if (!response.succeeded && !previous) throw unknownWorker(worker, root);
  return previous ? parseRecord<CordonRecord>(previous.value) : undefined;
}

/** Every cordon/drain record and draining mark under the root, read at one revision. */
export async function readCordons(client: Etcd3, root: string): Promise<Cordons> {
  const keys = keyLayout(root);
  const response = await client.kv.txn({
    compare: [],
    success: [rangeOf(keys.cordonsPrefix), rangeOf(keys.drainingPrefix)],
    failure: [],
  });
  const [records, marks] = response.responses.map((r) => r.response_range as IRangeResponse);
  return parseCordons(keys, records.kvs, marks.kvs);
}

/** Cordons from raw key-values (the master reads them inside its own one-revision transaction). */
export function parseCordons(
  keys: KeyLayout,
  records: Iterable<{ key: Buffer; value: Buffer }>,
  marks: Iterable<{ key: Buffer }>,
): Cordons {
  const cordons: Cordons = { records: new Map(), draining: new Set() };
  for (const kv of records) {
    const worker = keys.parseCordon(kv.key.toString());
    const record = parseRecord<CordonRecord>(kv.value);
    if (!worker || !record) continue;
    // An unreadable mode is the safer reading: take nothing new, move nothing.
    cordons.records.set(worker, record.mode === "drain" ? record : { ...record, mode: "cordon" });
  }
  for (const kv of marks) {
    const worker = keys.parseDraining(kv.key.toString());
    if (worker) cordons.draining.add(worker);
  }
  return cordons;
}

/** How the leader plans `worker`: `drain` (hand everything off), `cordon` (nothing new) or undefined (normal). */
export function cordonMode(cordons: Cordons, worker: string): CordonRecord["mode"] | undefined {
  if (cordons.draining.has(worker)) return "drain";
  return cordons.records.get(worker)?.mode;
}

async function setCordon(
  client: Etcd3,
  root: string,
  worker: string,
  mode: CordonRecord["mode"],
  reason: string | undefined,
): Promise<CordonRecord> {
  assertValidName("worker name", worker);
  const keys = keyLayout(root);
  const record: CordonRecord = { mode, ...(reason ? { reason } : {}), at: new Date().toISOString() };
  const response = await client
    .if(keys.worker(worker), "Version", ">", 0)
    .then(client.put(keys.cordon(worker)).value(JSON.stringify(record)))
    .commit();
  if (!response.succeeded) throw unknownWorker(worker, root);
  return record;
}

function unknownWorker(worker: string, root: string): EschedulerError {
  return new EschedulerError(
    "ERR_UNKNOWN_WORKER",
    `unknown worker ${JSON.stringify(worker)}: no worker of that name is registered under /${root}/`,
  );
}

function rangeOf(prefix: string) {
  return { request_range: { key: Buffer.from(prefix), range_end: prefixRangeEnd(prefix) } };
}
