import { describe, expect, it, vi } from "vitest";
import { markBarrierLeft } from "../../../src/barrier/index.js";
import { LeaseSession } from "../../../src/node/index.js";
import { isWorkerReady, readClusterView, workerReadiness } from "../../../src/readiness/index.js";
import { testSpace } from "../../helpers/context.js";

const since = "2026-01-01T00:00:00.000Z";

describe("isWorkerReady", () => {
  it("judges as workerReadiness does, reading the worker's tasks and statuses only once the rest allows ready", async () => {
    const { client, keys } = testSpace("wready-gate");
    const session = await LeaseSession.grant(client, { ttlMs: 5_000 });
    try {
      const worker = JSON.stringify({ name: "w1", host: "h", pid: 1, version: "0", startedAt: since });
      await session.lease.put(keys.worker("w1")).value(worker);
      await markBarrierLeft(client, keys);
      await client.put(keys.task("w1", "t1")).value(JSON.stringify({ id: "t1" }));
      const status = (state: string) => JSON.stringify({ state, attempt: 1, since });
      await session.lease.put(keys.status("w1", "t1")).value(status("running"));
      const txn = vi.spyOn(client.kv, "txn");
      const readTasks = () =>
        txn.mock.calls.some(([request]) =>
          (request.success ?? []).some(
            (op) => op.request_range?.key?.toString() === keys.workerTasksPrefix("w1"),
          ),
        );
      const plan = (workers: string[]) =>
        JSON.stringify({ epoch: 1, leader: "m1", at: since, workers, tasks: 1, moved: 0 });
      const verdict = async () =>
        workerReadiness("w1", await readClusterView(client, keys, { worker: "w1" }));

      // No plan yet: not ready, whatever the tasks; they are not read.
      expect(await isWorkerReady(client, keys, "w1")).toBe(false);
      expect(readTasks()).toBe(false);
      await client.put(keys.plan).value(plan(["other"]));
      expect(await isWorkerReady(client, keys, "w1")).toBe(false);
      expect(readTasks()).toBe(false);
      expect((await verdict()).ready).toBe(false);

      // In the plan: the tasks decide, as in the full read.
      await client.put(keys.plan).value(plan(["w1"]));
      txn.mockClear();
      expect(await isWorkerReady(client, keys, "w1")).toBe(true);
      expect(readTasks()).toBe(true);
      expect((await verdict()).ready).toBe(true);
      await session.lease.put(keys.status("w1", "t1")).value(status("starting"));
      expect(await isWorkerReady(client, keys, "w1")).toBe(false);
      expect((await verdict()).reasons).toEqual(['task "t1" on "w1" is starting']);
    } finally {
      await session.close();
    }
  });
});
