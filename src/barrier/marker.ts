import { CompareResult, CompareTarget, type Etcd3, type ICompare } from "etcd3";
import { EschedulerError } from "../errors.js";
import { type KeyLayout, requestDeadline } from "../node/index.js";

/** True once the first-start gathering has completed (the marker exists); then everyone skips the barrier. */
export async function isBarrierLeft(client: Etcd3, keys: KeyLayout): Promise<boolean> {
  return (await client.get(keys.barrierLeft).options(requestDeadline()).string()) !== null;
}

/**
 * Sets /R/worker_barrier_left to the RFC 3339 time only if missing, in one txn that also holds `fence` compares
 * (the master's leadership fence). Returns true when this call set it, false when it was already set.
 * Throws ERR_DEPOSED when the marker is missing but the fence failed.
 */
export async function markBarrierLeft(
  client: Etcd3,
  keys: KeyLayout,
  fence: ICompare[] = [],
): Promise<boolean> {
  const marker = Buffer.from(keys.barrierLeft);
  const result = await client.kv.txn(
    {
      compare: [
        ...fence,
        { key: marker, target: CompareTarget.Create, result: CompareResult.Equal, create_revision: "0" },
      ],
      success: [{ request_put: { key: marker, value: Buffer.from(new Date().toISOString()) } }],
      failure: [{ request_range: { key: marker } }],
    },
    requestDeadline(),
  );
  if (result.succeeded) return true;
  const existing = result.responses[0]?.response_range?.kvs ?? [];
  if (existing.length > 0) return false;
  throw new EschedulerError("ERR_DEPOSED", `not setting ${keys.barrierLeft}: the leadership fence failed`);
}
