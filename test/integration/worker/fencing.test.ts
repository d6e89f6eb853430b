import { describe, expect, it } from "vitest";
import { createEtcdClient } from "../../../src/node/index.js";
import type { WorkerStatus } from "../../../src/worker/index.js";
import { etcdEndpoints, testSpace, waitFor } from "../../helpers/context.js";
import { TcpProxy } from "../../helpers/tcp-proxy.js";
import { putTask, RecordingHandler, storedStatuses, testWorker } from "./fixtures.js";

describe("worker self-fencing", () => {
  it("stops every task when its lease is revoked, then registers again and restores its tasks", async () => {
    const { client, keys, root } = testSpace("wrevoke");
    const handler = new RecordingHandler();
    await putTask(client, keys, "w1", { id: "a" });
    await putTask(client, keys, "w1", { id: "b" });
    const worker = testWorker({ root, handler });
    const statuses: WorkerStatus[] = [];
    worker.on("status", (status) => statuses.push(status));
    const fenced = new Promise<{ tasks: number }>((resolve) => worker.once("leaseLost", resolve));
    await worker.start();
    await waitFor("both tasks running", () => handler.running.size === 2);
    const oldLease = (await client.get(keys.worker("w1")).exec()).kvs[0].lease;

    await client.leaseClient.leaseRevoke({ ID: oldLease });

    expect((await fenced).tasks).toBe(2);
    expect(handler.calls).toEqual(expect.arrayContaining(["stop a null", "stop b null"]));
    const newLease = await waitFor("registration under a new lease", async () => {
      const lease = (await client.get(keys.worker("w1")).exec()).kvs[0]?.lease;
      return lease && lease !== oldLease ? lease : undefined;
    });
    await waitFor("tasks running again with statuses under the new lease", async () => {
      const stored = await client.getAll().prefix(keys.workerStatusPrefix("w1")).exec();
      return (
        handler.running.size === 2 &&
        stored.kvs.length === 2 &&
        stored.kvs.every((kv) => kv.lease === newLease && JSON.parse(kv.value.toString()).state === "running")
      );
    });
    expect(handler.callsFor("a")).toEqual(["start a null", "stop a null", "start a null"]);
    expect(statuses).toEqual(["registered", "left_barrier", "lost", "registered", "left_barrier"]);
  });

  it("stops every task before etcd expires its lease when the connection is black-holed", async () => {
    const { client: direct, keys, root } = testSpace("wpart");
    const [host, port] = etcdEndpoints()[0].split(":");
    const proxy = new TcpProxy({ host, port: Number(port) });
    await proxy.start();
    const proxied = createEtcdClient({ etcd: [proxy.hostPort] });
    try {
      const handler = new RecordingHandler();
      for (const id of ["a", "b", "c"]) await putTask(direct, keys, "w1", { id });
      const worker = testWorker({ root, handler, client: proxied, ttlMs: 2_000 });
      await worker.start();
      await waitFor("all tasks running", () => handler.running.size === 3);
      // At each stop, ask etcd (directly) whether the worker's registration still exists.
      const registrationAtStop: Promise<string | null>[] = [];
      handler.onStop = () => registrationAtStop.push(direct.get(keys.worker("w1")).string());

      proxy.partition();
      const partitionedAt = Date.now();
      await waitFor("every task stopped", () => handler.running.size === 0, 5_000);
      const stoppedAfter = Date.now() - partitionedAt;

      expect(stoppedAfter).toBeLessThan(2_000);
      const registrations = await Promise.all(registrationAtStop);
      expect(registrations).toHaveLength(3);
      expect(registrations.every((value) => value !== null)).toBe(true);
      expect(worker.status).toBe("lost");

      proxy.heal();
      await waitFor("tasks restored after the partition heals", () => handler.running.size === 3, 20_000);
      await waitFor("running statuses", async () => {
        const stored = await storedStatuses(direct, keys, "w1");
        return stored.size === 3 && [...stored.values()].every((status) => status.state === "running");
      });
      await worker.stop();
    } finally {
      proxied.close();
      await proxy.stop();
    }
  });
});
