import type { Etcd3 } from "etcd3";
import {
  keyLayout,
  type Logger,
  type PausedRecord,
  pausedRecordSchema,
  readRecord,
  repairPausedRecord,
  silentLogger,
} from "../node/index.js";
import { type ActorOptions, actorOf, auditOps } from "./audit.js";

/** Pauses every leader's schedules (the key has no lease: it survives failovers until `resume`). Resolves with the stored record. */
export async function pause(client: Etcd3, root: string, options: ActorOptions = {}): Promise<PausedRecord> {
  const keys = keyLayout(root);
  const actor = actorOf(options);
  const record: PausedRecord = { ...actor, at: new Date().toISOString() };
  await client.kv.txn({
    compare: [],
    success: [
      { request_put: { key: Buffer.from(keys.paused), value: Buffer.from(JSON.stringify(record)) } },
      ...(await auditOps(client, keys, { at: record.at, action: "pause", ...actor })),
    ],
    failure: [],
  });
  return record;
}

/** Lets schedules run again; resolves true when schedules were paused. Who and why go into the audit trail. */
export async function resume(client: Etcd3, root: string, options: ActorOptions = {}): Promise<boolean> {
  const keys = keyLayout(root);
  const audit = { at: new Date().toISOString(), action: "resume", ...actorOf(options) };
  const response = await client.kv.txn({
    compare: [],
    success: [
      { request_delete_range: { key: Buffer.from(keys.paused) } },
      ...(await auditOps(client, keys, audit)),
    ],
    failure: [],
  });
  return Number(response.responses[0]?.response_delete_range?.deleted ?? 0) > 0;
}

/** The pause record, or undefined when schedules may run (an unreadable record still pauses). */
export async function readPaused(
  client: Etcd3,
  root: string,
  logger: Logger = silentLogger,
): Promise<PausedRecord | undefined> {
  const key = keyLayout(root).paused;
  const value = await client.get(key).string();
  return readRecord(pausedRecordSchema, key, value, logger, { repair: repairPausedRecord });
}
