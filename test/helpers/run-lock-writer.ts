import type { Etcd3 } from "etcd3";
import { type KeyLayout, LeaseSession, silentLogger, type TaskStatus } from "../../src/node/index.js";
import { StatusWriter } from "../../src/worker/status-writer.js";

/** The status a start claim stores. */
export const starting: TaskStatus = { state: "starting", attempt: 1, since: new Date(0).toISOString() };

/** A registered worker's status writer under a lease of its own, and the task key revisions it has seen. */
export async function writerOf(client: Etcd3, keys: KeyLayout, worker: string) {
  const lease = await LeaseSession.grant(client, { ttlMs: 10_000 });
  // A claim requires the worker's registration under its lease.
  await client
    .put(keys.worker(worker))
    .value(JSON.stringify({ name: worker }))
    .lease(lease.id);
  const writer = new StatusWriter(client, keys, worker, lease, silentLogger);
  const assign = async (taskId: string) =>
    Number((await client.put(keys.task(worker, taskId)).value("{}").exec()).header.revision);
  return { lease, writer, assign };
}
