import { describe, expect, it, vi } from "vitest";
import { markBarrierLeft } from "../../../src/barrier/index.js";
import { testClient, testSpace, waitFor } from "../../helpers/context.js";
import { putPlan, putTask, RecordingHandler, storedStatuses, testWorker } from "./fixtures.js";

describe("worker readiness reads", () => {
  it("reads nothing for its `ready` event while nobody listens, and judges readiness once someone does", async () => {
    const { client, keys, root } = testSpace("wready-reads");
    await markBarrierLeft(client, keys);
    await putPlan(client, keys, ["w1"]);
    const own = testClient();
    const txn = vi.spyOn(own.kv, "txn");
    // A readiness check reads several ranges in one transaction (registration, marker, plan, leader, ...);
    // so does the session's one snapshot of its watches, before the start resolves (counted apart).
    const reads = () =>
      txn.mock.calls.filter(([request]) => {
        const ops = request.success ?? [];
        return ops.length > 1 && ops.every((op) => op.request_range !== undefined);
      }).length;
    const handler = new RecordingHandler();
    const worker = testWorker({ root, handler, client: own });
    await worker.start();
    const watchReads = reads();

    // One at a time: each start stores `running` with every assigned task running, which is when a check reads.
    for (const id of ["a", "b", "c"]) {
      await putTask(client, keys, "w1", { id });
      await waitFor(`${id} running in etcd`, async () => {
        const statuses = await storedStatuses(client, keys, "w1");
        return statuses.get(id)?.state === "running";
      });
    }
    expect(reads()).toBe(watchReads);

    const ready = new Promise<boolean>((resolve) => worker.on("ready", resolve));
    expect(await ready).toBe(true);
    expect(reads()).toBeGreaterThan(watchReads);
  });
});
