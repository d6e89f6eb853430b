import type { Etcd3 } from "etcd3";
import {
  assertValidName,
  type FailureRecord,
  failureRecordSchema,
  keyLayout,
  readRecord,
  requestDeadline,
  silentLogger,
} from "../node/index.js";
import { type ActorOptions, actorOf, auditOps } from "./audit.js";

/** What `task reset` found and cleared. */
export interface TaskResetResult {
  task: string;
  /** False when the task had no failure record (nothing to reset). */
  reset: boolean;
  /** The workers it had failed on, with their last error (from the cleared record). */
  failedOn: Array<{ worker: string; error: string }>;
}

/**
 * Forgets where a task failed: deletes `/R/failure/<id>` (with its audit record, in one transaction).
 * The leader sees the deletion and schedules at once, so a quarantined task is placed again and a task
 * avoiding workers may return to them.
 */
export async function resetTask(
  client: Etcd3,
  root: string,
  taskId: string,
  options: ActorOptions = {},
): Promise<TaskResetResult> {
  assertValidName("task id", taskId);
  const keys = keyLayout(root);
  const key = keys.failure(taskId);
  const audit = { at: new Date().toISOString(), action: "task reset", task: taskId, ...actorOf(options) };
  const response = await client.kv.txn(
    {
      compare: [],
      success: [
        { request_delete_range: { key: Buffer.from(key), prev_kv: true } },
        ...(await auditOps(client, keys, audit)),
      ],
      failure: [],
    },
    requestDeadline(),
  );
  const previous = response.responses[0]?.response_delete_range?.prev_kvs[0];
  const record: FailureRecord | undefined = previous
    ? readRecord(failureRecordSchema, key, previous.value, silentLogger)
    : undefined;
  const failedOn = Object.entries(record?.workers ?? {}).map(([worker, entry]) => ({
    worker,
    error: entry.error,
  }));
  return { task: taskId, reset: previous !== undefined, failedOn };
}
