import { pino } from "pino";
import { describe, expect, it, vi } from "vitest";
import { gatheringBarrier, markBarrierLeft } from "../../../src/barrier/index.js";
import { LeaseSession } from "../../../src/node/index.js";
import type { TaskContext, WorkerStatus } from "../../../src/worker/index.js";
import { testClient, testSpace, waitFor } from "../../helpers/context.js";
import { putPlan, putTask, RecordingHandler, storedStatuses, testWorker } from "./fixtures.js";

describe("worker lifecycle", () => {
  it("stop() stops every task, removes its registration at once, and is idempotent", async () => {
    const { client, keys, root } = testSpace("wstop");
    const handler = new RecordingHandler();
    await putTask(client, keys, "w1", { id: "a" });
    await putTask(client, keys, "w1", { id: "b" });
    const worker = testWorker({ root, handler, ttlMs: 10_000 });
    await worker.start();
    await waitFor("tasks running", () => handler.running.size === 2);

    await Promise.all([worker.stop(), worker.stop()]);

    expect(await client.get(keys.worker("w1")).string()).toBeNull();
    expect(handler.running.size).toBe(0);
    expect(handler.calls).toEqual(expect.arrayContaining(["stop a null", "stop b null"]));
    expect((await storedStatuses(client, keys, "w1")).size).toBe(0);
    expect(worker.status).toBe("dead");
    await worker.stop();
  });

  it("stop() keeps the lease and a slow task's status until its stop returns, reporting the overrun meanwhile", async () => {
    const { client, keys, root } = testSpace("wstuck");
    const stopping: string[] = [];
    let finishSlowStop!: () => void;
    const handler = {
      start: () => {},
      stop: (task: { id: string }) => {
        stopping.push(task.id);
        return task.id === "slow"
          ? new Promise<void>((resolve) => (finishSlowStop = resolve))
          : new Promise((resolve) => setTimeout(resolve, 50));
      },
    };
    for (const id of ["slow", "x", "y"]) await putTask(client, keys, "w1", { id });
    const worker = testWorker({ root, handler, ttlMs: 10_000, stopTimeoutMs: 300 });
    const overruns: Array<{ tasks: string[]; stopTimeoutMs: number }> = [];
    worker.on("stopOverrun", (overrun) => overruns.push(overrun));
    await worker.start();
    await waitFor("statuses running", async () => {
      const statuses = [...(await storedStatuses(client, keys, "w1")).values()];
      return statuses.length === 3 && statuses.every((status) => status.state === "running");
    });

    let stopped = false;
    const stop = worker.stop().then(() => (stopped = true));
    await waitFor("the overrun", () => overruns.length > 0);

    expect(overruns).toEqual([{ tasks: ["slow"], stopTimeoutMs: 300 }]);
    expect(stopped).toBe(false);
    expect(await client.get(keys.worker("w1")).string()).not.toBeNull();
    expect([...(await storedStatuses(client, keys, "w1")).keys()]).toEqual(["slow"]);

    finishSlowStop();
    await stop;
    expect(stopping.sort()).toEqual(["slow", "x", "y"]);
    expect(await client.get(keys.worker("w1")).string()).toBeNull();
    expect((await storedStatuses(client, keys, "w1")).size).toBe(0);
  });

  it("warns once at start when the stop timeout exceeds the lease margin (30 % of the TTL)", async () => {
    const { root } = testSpace("wmargin");
    const lines: Array<{ msg: string; stopTimeoutMs?: number; leaseMarginMs?: number }> = [];
    const logger = pino({ level: "warn" }, { write: (line: string) => lines.push(JSON.parse(line)) });
    const slow = testWorker({ root, name: "slow", logger, ttlMs: 2_000, stopTimeoutMs: 1_000 });
    const quick = testWorker({ root, name: "quick", logger, ttlMs: 2_000, stopTimeoutMs: 500 });
    await Promise.all([slow.start(), quick.start()]);

    const warnings = lines.filter((line) => /stop timeout exceeds the lease margin/.test(line.msg));
    expect(warnings).toEqual([expect.objectContaining({ stopTimeoutMs: 1_000, leaseMarginMs: 600 })]);
  });

  it("is ready only once the last plan includes it and every task assigned to it runs", async () => {
    const { client, keys, root } = testSpace("wready");
    const handler = new RecordingHandler();
    handler.hold("a");
    await markBarrierLeft(client, keys);
    await putTask(client, keys, "w1", { id: "a" });
    const worker = testWorker({ root, handler });
    const readyEvents: boolean[] = [];
    worker.on("ready", (ready) => readyEvents.push(ready));
    await worker.start();

    expect((await worker.readiness()).reasons).toContain("no plan has been applied yet");
    await putPlan(client, keys, ["other"]);
    expect((await worker.readiness()).reasons.join("; ")).toMatch(/"w1" is not in the last plan/);
    await putPlan(client, keys, ["w1"]);
    // The start's claim is written in the background: wait for it to land.
    const starting = await waitFor("the claim of a", async () => {
      const readiness = await worker.readiness();
      return /task "a" on "w1" is starting/.test(readiness.reasons.join("; ")) ? readiness : undefined;
    });
    expect(starting.ready).toBe(false);
    expect(starting.reasons.join("; ")).toMatch(/task "a" on "w1" is starting/);
    expect(readyEvents).toEqual([]);

    handler.release("a");
    await waitFor("ready", async () => (await worker.readiness()).ready);
    await waitFor("the ready event", () => readyEvents.at(-1) === true);
  });

  it("re-checks its readiness in etcd only while its watch of the plan names it, in one transaction a check", async () => {
    const { client, keys, root } = testSpace("wready-watch");
    const handler = new RecordingHandler();
    await markBarrierLeft(client, keys);
    await putTask(client, keys, "w1", { id: "a" });
    await putTask(client, keys, "w1", { id: "b" });
    const workerClient = testClient();
    const txn = vi.spyOn(workerClient.kv, "txn");
    // A readiness read names the barrier marker (the gate's small read and the full one).
    const readinessReads = () =>
      txn.mock.calls
        .map(([request]) => (request.success ?? []).map((op) => op.request_range?.key?.toString()))
        .filter((ranges) => ranges.includes(keys.barrierLeft));
    const worker = testWorker({ root, handler, client: workerClient });
    const readyEvents: boolean[] = [];
    worker.on("ready", (ready) => readyEvents.push(ready));
    await worker.start();
    await waitFor("both statuses running", async () => {
      const stored = await storedStatuses(client, keys, "w1");
      return stored.get("a")?.state === "running" && stored.get("b")?.state === "running";
    });
    await putPlan(client, keys, ["other"]);
    // Every task stored running, but no plan it watched names it: no read.
    expect(readinessReads()).toEqual([]);
    await putPlan(client, keys, ["w1"]);
    await waitFor("the ready event", () => readyEvents.at(-1) === true);
    // Named in the plan: each check is one read of everything, tasks included (not the gate's first).
    expect(readinessReads().length).toBeGreaterThan(0);
    for (const ranges of readinessReads()) expect(ranges).toContain(keys.workerTasksPrefix("w1"));
    expect((await worker.readiness()).ready).toBe(true);

    await putPlan(client, keys, ["other"]);
    await waitFor("the not-ready event", () => readyEvents.at(-1) === false);
    expect((await worker.readiness()).reasons.join("; ")).toMatch(/"w1" is not in the last plan/);
  });

  it("first start of a fleet: gathers, runs its first assignment, and leaves the barrier once it runs", async () => {
    const { client, keys, root } = testSpace("wbarrier");
    const handler = new RecordingHandler();
    handler.hold("a");
    const worker = testWorker({ root, handler, expectedWorkers: 1 });
    const statuses: WorkerStatus[] = [];
    worker.on("status", (status) => statuses.push(status));
    await worker.start();
    await waitFor("the worker in the barrier", () => worker.status === "in_barrier");

    // The test plays the master: gather, set the marker, assign, publish the plan, leave.
    const session = await LeaseSession.grant(client, { ttlMs: 5_000 });
    const leader = gatheringBarrier({ client, keys, name: "leader", expectedWorkers: 1, session });
    await leader.enter();
    await markBarrierLeft(client, keys);
    await putTask(client, keys, "w1", { id: "a" });
    await putPlan(client, keys, ["w1"]);
    const leaderLeft = leader.leave();
    await waitFor("the task to start", () => handler.callsFor("a").length === 1);
    await waitFor(
      "only the worker left in the barrier",
      async () => (await leader.participants()).join() === "w1",
    );
    expect(worker.status).toBe("in_barrier");

    handler.release("a");
    await leaderLeft;
    await waitFor("the worker past the barrier", () => worker.status === "left_barrier");
    expect(statuses).toEqual(["registered", "in_barrier", "left_barrier"]);
    await session.close();
  });

  it("stops waiting in the barrier when the master gives up and sets the marker", async () => {
    const { client, keys, root } = testSpace("wmarker");
    const worker = testWorker({ root, handler: new RecordingHandler(), expectedWorkers: 3 });
    await worker.start();
    await waitFor("the worker in the barrier", () => worker.status === "in_barrier");
    await markBarrierLeft(client, keys);
    await waitFor("the worker past the barrier", () => worker.status === "left_barrier");
    expect(await client.getAll().prefix(keys.barrierPrefix).keys()).toEqual([]);
  });

  it("skips the barrier on a later start (the marker is set)", async () => {
    const { client, keys, root } = testSpace("wlater");
    await markBarrierLeft(client, keys);
    const worker = testWorker({ root, handler: new RecordingHandler(), expectedWorkers: 3 });
    const statuses: WorkerStatus[] = [];
    worker.on("status", (status) => statuses.push(status));
    await worker.start();
    await waitFor("the worker past the barrier", () => worker.status === "left_barrier");
    expect(statuses).toEqual(["registered", "left_barrier"]);
  });

  it("waits for a registration slot while the worker cap is reached, and says so in its readiness", async () => {
    const { client, keys, root } = testSpace("wcap");
    const first = testWorker({ root, name: "w1", maxWorkers: 1, handler: new RecordingHandler() });
    await first.start();
    const second = testWorker({ root, name: "w2", maxWorkers: 1, handler: new RecordingHandler() });
    const admitted = second.start();
    await waitFor("the second worker to wait for a slot", async () =>
      (await second.readiness()).reasons.some((reason) =>
        reason.startsWith("waiting for a registration slot: worker cap reached"),
      ),
    );
    await first.stop();
    await admitted;
    expect(await client.get(keys.worker("w2")).string()).not.toBeNull();
  });

  it("gives the handler a context with the worker name, a child logger and a signal aborted on stop", async () => {
    const { client, keys, root } = testSpace("wctx");
    const contexts: TaskContext[] = [];
    const run = (_task: unknown, ctx: TaskContext) => {
      contexts.push(ctx);
      return new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
    };
    await putTask(client, keys, "w1", { id: "a" });
    const worker = testWorker({ root, handler: run });
    await worker.start();
    await waitFor("run called", () => contexts.length === 1);
    expect(contexts[0].worker).toBe("w1");
    expect(contexts[0].logger.bindings()).toMatchObject({ worker: "w1", task: "a" });
    await client.delete().key(keys.task("w1", "a"));
    await waitFor("signal aborted", () => contexts[0].signal.aborted);
  });

  it("stop() while waiting in the barrier withdraws from it and leaves at once", async () => {
    const { client, keys, root } = testSpace("wbstop");
    const worker = testWorker({ root, handler: new RecordingHandler(), expectedWorkers: 2, ttlMs: 10_000 });
    await worker.start();
    await waitFor(
      "the worker in the barrier",
      async () => (await client.getAll().prefix(keys.barrierPrefix).keys()).length > 0,
    );
    await worker.stop();
    expect(await client.getAll().prefix(keys.barrierPrefix).keys()).toEqual([]);
    expect(await client.get(keys.worker("w1")).string()).toBeNull();
  });

  it("start() rejects with ERR_ABORTED when stopped while waiting for a registration slot", async () => {
    const { root } = testSpace("wcapstop");
    const first = testWorker({ root, name: "w1", maxWorkers: 1 });
    await first.start();
    const second = testWorker({ root, name: "w2", maxWorkers: 1 });
    const waiting = new Promise((resolve) => second.once("registrationWaiting", resolve));
    const started = second.start();
    await waiting;
    await second.stop();
    await expect(started).rejects.toMatchObject({ code: "ERR_ABORTED" });
    expect(second.status).toBe("dead");
  });
});
