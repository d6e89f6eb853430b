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

/** Pauses every leader's schedules (the key has no lease: it survives failovers until `resume`). Resolves with the stored record. */
export async function pause(
  client: Etcd3,
  root: string,
  options: { reason?: string } = {},
): Promise<PausedRecord> {
  const record: PausedRecord = {
    ...(options.reason ? { reason: options.reason } : {}),
    at: new Date().toISOString(),
  };
  await client.put(keyLayout(root).paused).value(JSON.stringify(record));
  return record;
}

/** Lets schedules run again; resolves true when schedules were paused. */
export async function resume(client: Etcd3, root: string): Promise<boolean> {
  const response = await client.delete().key(keyLayout(root).paused).exec();
  return Number(response.deleted) > 0;
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
