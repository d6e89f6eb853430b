import type { Etcd3 } from "etcd3";
import { type ActorOptions, actorOf, auditOps } from "./audit.js";
import {
  assertValidName,
  type HeldRecord,
  heldRecordSchema,
  keyLayout,
  readRecord,
  repairHeldRecord,
  silentLogger,
} from "../node/index.js";

/** What `release` found: the hold as it was (undefined when nothing was held) and whether it ran until now. */
export interface ReleaseResult {
  worker: string;
  /** The hold before the release; undefined when none was recorded. */
  held?: HeldRecord;
  /** True when the hold still ran and now ends; false when there was none or it had ended already. */
  released: boolean;
}

/**
 * Ends the wait for a crashed worker's tasks now (`--reassign-delay`): sets its hold's `until` to now,
 * and the leader (which watches the holds) moves them at once. Nothing held: resolves with `released: false`.
 */
export async function release(
  client: Etcd3,
  root: string,
  worker: string,
  options: ActorOptions = {},
): Promise<ReleaseResult> {
  assertValidName("worker name", worker);
  const keys = keyLayout(root);
  const key = keys.held(worker);
  const actor = actorOf(options);
  for (;;) {
    const kv = (await client.get(key).exec()).kvs[0];
    if (!kv) return { worker, released: false };
    const held = readRecord(heldRecordSchema, key, kv.value, silentLogger, { repair: repairHeldRecord });
    const now = new Date();
    if (!held || Date.parse(held.until) <= now.getTime()) return { worker, held, released: false };
    const at = now.toISOString();
    const { by, reason } = actor;
    const ended: HeldRecord = {
      ...held,
      until: at,
      released: at,
      releasedBy: by,
      ...(reason ? { reason } : {}),
    };
    // Only over the record read: a leader that deleted it meanwhile (the worker came back) is not undone.
    const response = await client.kv.txn({
      compare: [{ key: Buffer.from(key), target: "Mod", result: "Equal", mod_revision: kv.mod_revision }],
      success: [
        { request_put: { key: Buffer.from(key), value: Buffer.from(JSON.stringify(ended)) } },
        ...(await auditOps(client, keys, { at, action: "release", worker, ...actor })),
      ],
      failure: [],
    });
    if (response.succeeded) return { worker, held, released: true };
  }
}
