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

/** Task `t` assigned to w1 and w2: w1's claim takes its run lock, w2's is refused (naming w1). */
export async function refusedClaim(client: Etcd3, keys: KeyLayout) {
  const w1 = await writerOf(client, keys, "w1");
  const w2 = await writerOf(client, keys, "w2");
  const [r1, r2] = await Promise.all([w1.assign("t"), w2.assign("t")]);
  await w1.writer.claim("t", starting, r1);
  const refused = await w2.writer.claim("t", starting, r2);
  if (refused.heldBy === undefined) throw new Error("expected the claim to be refused by the lock");
  return { w1, w2, r2, refused: { ...refused, heldBy: refused.heldBy } };
}
