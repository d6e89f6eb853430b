import { describe, expect, it, vi } from "vitest";
import { markBarrierLeft } from "../../../src/barrier/index.js";
import { LeaseSession } from "../../../src/node/index.js";
import {
  isWorkerReady,
  readClusterView,
  WorkerReadyCheck,
  workerReadiness,
} from "../../../src/readiness/index.js";
import { testSpace } from "../../helpers/context.js";

const since = "2026-01-01T00:00:00.000Z";

/** A registered worker w1 (under a lease of its own) holding task t1, past the barrier. */
async function workerWithTask(label: string) {
  const { client, keys } = testSpace(label);
  const session = await LeaseSession.grant(client, { ttlMs: 5_000 });
  const worker = JSON.stringify({ name: "w1", host: "h", pid: 1, version: "0", startedAt: since });
  await session.lease.put(keys.worker("w1")).value(worker);
  await markBarrierLeft(client, keys);
  await client.put(keys.task("w1", "t1")).value(JSON.stringify({ id: "t1" }));
  return { client, keys, session };
}

describe("isWorkerReady", () => {
  it("judges as workerReadiness does, reading the worker's tasks and statuses only once the rest allows ready", async () => {
    const { client, keys, session } = await workerWithTask("wready-gate");
    try {
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

  it("spends one transaction per check while the gate was open at the last check, and judges as one full read", async () => {
    const { client, keys } = testSpace("wready-repeat");
    const session = await LeaseSession.grant(client, { ttlMs: 5_000 });
    try {
      const worker = JSON.stringify({ name: "w1", host: "h", pid: 1, version: "0", startedAt: since });
      await session.lease.put(keys.worker("w1")).value(worker);
      await markBarrierLeft(client, keys);
      await client.put(keys.task("w1", "t1")).value(JSON.stringify({ id: "t1" }));
      const status = (state: string) => JSON.stringify({ state, attempt: 1, since });
      await session.lease.put(keys.status("w1", "t1")).value(status("running"));
      const plan = (workers: string[]) =>
        JSON.stringify({ epoch: 1, leader: "m1", at: since, workers, tasks: 1, moved: 0 });
      await client.put(keys.plan).value(plan(["w1"]));
      const txn = vi.spyOn(client.kv, "txn");
      const readsTasks = (request: Parameters<typeof client.kv.txn>[0]) =>
        (request.success ?? []).some(
          (op) => op.request_range?.key?.toString() === keys.workerTasksPrefix("w1"),
        );
      const check = new WorkerReadyCheck(client, keys, "w1");
      /** The check's verdict, the full read's, and the transactions it took (how many read the tasks). */
      const judged = async () => {
        txn.mockClear();
        const ready = await check.ready();
        const calls = txn.mock.calls.map(([request]) => readsTasks(request));
        const full = workerReadiness("w1", await readClusterView(client, keys, { worker: "w1" })).ready;
        return { ready, full, calls };
      };

      // First check: the gate, then everything.
      expect(await judged()).toEqual({ ready: true, full: true, calls: [false, true] });
      // The gate was open: one read of everything.
      expect(await judged()).toEqual({ ready: true, full: true, calls: [true] });
      await session.lease.put(keys.status("w1", "t1")).value(status("starting"));
      expect(await judged()).toEqual({ ready: false, full: false, calls: [true] });
      // Out of the plan: the full read finds the gate closed, and the next check reads the gate only.
      await client.put(keys.plan).value(plan(["other"]));
      expect(await judged()).toEqual({ ready: false, full: false, calls: [true] });
      expect(await judged()).toEqual({ ready: false, full: false, calls: [false] });
      await session.lease.put(keys.status("w1", "t1")).value(status("running"));
      await client.put(keys.plan).value(plan(["w1"]));
      expect(await judged()).toEqual({ ready: true, full: true, calls: [false, true] });
    } finally {
      await session.close();
    }
  });

  it("reads everything at once when the caller's watch shows the worker in the plan, judging as one full read", async () => {
    const { client, keys, session } = await workerWithTask("wready-planned");
    try {
      await session.lease
        .put(keys.status("w1", "t1"))
        .value(JSON.stringify({ state: "running", attempt: 1, since }));
      const plan = (workers: string[]) =>
        JSON.stringify({ epoch: 1, leader: "m1", at: since, workers, tasks: 1, moved: 0 });
      const txn = vi.spyOn(client.kv, "txn");
      const readsTasks = (request: Parameters<typeof client.kv.txn>[0]) =>
        (request.success ?? []).some(
          (op) => op.request_range?.key?.toString() === keys.workerTasksPrefix("w1"),
        );
      const check = new WorkerReadyCheck(client, keys, "w1");
      const judged = async (planned: boolean) => {
        txn.mockClear();
        const ready = await check.ready(planned);
        const calls = txn.mock.calls.map(([request]) => readsTasks(request));
        const full = workerReadiness("w1", await readClusterView(client, keys, { worker: "w1" })).ready;
        return { ready, full, calls };
      };

      await client.put(keys.plan).value(plan(["w1"]));
      expect(await judged(true)).toEqual({ ready: true, full: true, calls: [true] });
      // A watch behind etcd: the plan names another worker now; the full read says so.
      await client.put(keys.plan).value(plan(["other"]));
      expect(await judged(true)).toEqual({ ready: false, full: false, calls: [true] });
      expect(await judged(false)).toEqual({ ready: false, full: false, calls: [false] });
    } finally {
      await session.close();
    }
  });
});
