import { describe, expect, it, vi } from "vitest";
import type { EschedulerError } from "../../../src/errors.js";
import { testClient, testSpace, waitFor } from "../../helpers/context.js";
import { putTask, RecordingHandler, testWorker } from "./fixtures.js";

describe("a worker session's watches", () => {
  it("watch the registration, the tasks and the plan on one stream, from one read", async () => {
    const { client, keys, root } = testSpace("wsession-one-stream");
    await putTask(client, keys, "w1", { id: "a" });
    const own = testClient();
    const streams = vi.spyOn(own.watchClient, "watch");
    const reads = vi.spyOn(own.kv, "txn");
    const handler = new RecordingHandler();
    const worker = testWorker({ root, handler, client: own });
    const changes: unknown[] = [];
    worker.on("added", (task) => changes.push(task.id));

    await worker.start();
    await waitFor("a running", () => handler.running.has("a"));
    expect(streams).toHaveBeenCalledTimes(1);
    // The registration's key is in the same read as the tasks and the plan.
    const snapshots = reads.mock.calls.filter(([request]) =>
      (request.success ?? []).some((op) => op.request_range?.key?.toString() === keys.worker("w1")),
    );
    expect(snapshots).toHaveLength(1);
    const ranges = snapshots[0]?.[0].success?.map((op) => op.request_range?.key?.toString());
    expect(ranges).toEqual(expect.arrayContaining([keys.workerTasksPrefix("w1"), keys.plan]));

    // The tasks' watch hears its changes on that stream.
    await putTask(client, keys, "w1", { id: "b" });
    await waitFor("b running", () => handler.running.has("b"));
    expect(changes).toEqual(["a", "b"]);
    expect(streams).toHaveBeenCalledTimes(1);
  });

  it("fence when the registration was taken over between registering and the session's read", async () => {
    const { client, keys, root } = testSpace("wsession-takeover");
    const own = testClient();
    const other = await client.lease(60, { autoKeepAlive: false }).grant();
    const txn = own.kv.txn.bind(own.kv);
    vi.spyOn(own.kv, "txn").mockImplementation(async (request, options) => {
      const snapshot = (request.success ?? []).some(
        (op) => op.request_range?.key?.toString() === keys.workerTasksPrefix("w1"),
      );
      if (snapshot) await client.put(keys.worker("w1")).value("{}").lease(other);
      return txn(request, options);
    });
    const worker = testWorker({ root, handler: new RecordingHandler(), client: own });
    const lost = new Promise<Error>((resolve) => worker.once("lost", resolve));

    await worker.start();

    expect(((await lost) as EschedulerError).code).toBe("ERR_REGISTRATION_LOST");
    expect((await lost).message).toContain(`held by lease ${other}`);
    await client.leaseClient.leaseRevoke({ ID: other });
  });
});
