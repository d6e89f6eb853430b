import { describe, expect, it } from "vitest";
import type { TaskChange } from "../../../src/worker/index.js";
import type { TaskContext } from "../../../src/worker/handler.js";
import { testSpace, waitFor } from "../../helpers/context.js";
import { putTask, RecordingHandler, recordStatuses, storedStatuses, testWorker } from "./fixtures.js";

describe("worker tasks", () => {
  it("starts added tasks, restarts changed ones and stops removed ones, in the order written", async () => {
    const { client, keys, root } = testSpace("wtasks");
    const handler = new RecordingHandler();
    await putTask(client, keys, "w1", { id: "a", payload: 1 });
    const worker = testWorker({ root, handler });
    await worker.start();
    await putTask(client, keys, "w1", { id: "b", payload: 1 });
    await waitFor("a and b running", () => handler.running.has("a") && handler.running.has("b"));
    await putTask(client, keys, "w1", { id: "a", payload: 2 });
    await client.delete().key(keys.task("w1", "b"));
    await waitFor("b stopped", () => !handler.running.has("b"));
    await waitFor(
      "a running with payload 2",
      () => handler.callsFor("a").length === 3 && handler.running.has("a"),
    );

    expect(handler.callsFor("a")).toEqual(["start a 1", "stop a 1", "start a 2"]);
    expect(handler.callsFor("b")).toEqual(["start b 1", "stop b 1"]);
    await waitFor("status keys to match what runs", async () => {
      const statuses = await storedStatuses(client, keys, "w1");
      return statuses.size === 1 && statuses.get("a")?.state === "running";
    });
    expect(worker.tasks()).toEqual([
      { id: "a", task: { id: "a", payload: 2 }, state: "running", attempt: 1 },
    ]);
  });

  it("shows a failing start as failed with its error, then retries it until it runs", async () => {
    const { client, keys, root } = testSpace("wfail");
    const handler = new RecordingHandler();
    const statuses = await recordStatuses(client, keys, "w1");
    const worker = testWorker({ root, handler });
    await worker.start();
    await putTask(client, keys, "w1", { id: "flaky", payload: { failStarts: 2 } });
    await waitFor("the task to run", () => handler.running.has("flaky"));
    await waitFor("the running status", () => statuses.of("flaky").at(-1) === "running");

    expect(statuses.of("flaky")).toEqual(["starting", "failed", "starting", "failed", "starting", "running"]);
    const stored = (await storedStatuses(client, keys, "w1")).get("flaky");
    expect(stored).toMatchObject({ state: "running", attempt: 3 });
  });

  it("stores the start error in the failed status", async () => {
    const { client, keys, root } = testSpace("wferr");
    const handler = new RecordingHandler();
    const worker = testWorker({ root, handler, startRetry: { initialMs: 60_000, maxMs: 60_000 } });
    await worker.start();
    await putTask(client, keys, "w1", { id: "t", payload: { failStarts: 5 } });
    const failed = await waitFor("the failed status", async () => {
      const status = (await storedStatuses(client, keys, "w1")).get("t");
      return status?.state === "failed" ? status : undefined;
    });
    expect(failed.error).toBe("start 1 of t refused");
    expect(worker.tasks()[0]).toMatchObject({ id: "t", state: "failed", error: "start 1 of t refused" });
  });

  it("keeps status keys truthful at every step: starting while starting, gone once stopped", async () => {
    const { client, keys, root } = testSpace("wtruth");
    const handler = new RecordingHandler();
    handler.hold("slow");
    const statuses = await recordStatuses(client, keys, "w1");
    const worker = testWorker({ root, handler });
    await worker.start();
    await putTask(client, keys, "w1", { id: "slow" });
    await waitFor("start to be called", () => handler.callsFor("slow").length === 1);
    // The start is held: the stored status must say so.
    await waitFor(
      "the starting status",
      async () => (await storedStatuses(client, keys, "w1")).get("slow")?.state === "starting",
    );
    expect(handler.running.has("slow")).toBe(false);
    handler.release("slow");
    await waitFor(
      "running",
      async () => (await storedStatuses(client, keys, "w1")).get("slow")?.state === "running",
    );
    await client.delete().key(keys.task("w1", "slow"));
    await waitFor("status removed", async () => (await storedStatuses(client, keys, "w1")).size === 0);
    expect(handler.running.size).toBe(0);
    await waitFor("the deletion to be seen", () => statuses.of("slow").at(-1) === "removed");
    // Its stop returns at once: no stopping status between.
    expect(statuses.of("slow")).toEqual(["starting", "running", "removed"]);
  });

  it("marks a stored value that is not a task as failed without running it", async () => {
    const { client, keys, root } = testSpace("wbad");
    const handler = new RecordingHandler();
    const worker = testWorker({ root, handler });
    await worker.start();
    await client.put(keys.task("w1", "broken")).value("{not json");
    const status = await waitFor("failed status", async () =>
      (await storedStatuses(client, keys, "w1")).get("broken"),
    );
    expect(status).toMatchObject({ state: "failed", error: expect.stringContaining('"broken"') });
    expect(handler.calls).toEqual([]);
  });

  it("delivers task changes to a worker without a handler, which reports states itself", async () => {
    const { client, keys, root } = testSpace("witer");
    await putTask(client, keys, "w1", { id: "x", payload: 1 });
    const worker = testWorker({ root });
    await worker.start();
    const changes: TaskChange[] = [];
    const consumed = (async () => {
      for await (const change of worker.taskChanges()) changes.push(change);
    })();
    await putTask(client, keys, "w1", { id: "x", payload: 2 });
    await waitFor("two changes", () => changes.length === 2);
    await worker.reportTaskState("x", "running");
    expect((await storedStatuses(client, keys, "w1")).get("x")?.state).toBe("running");
    await client.delete().key(keys.task("w1", "x"));
    await waitFor("three changes", () => changes.length === 3);
    await worker.reportTaskState("x", "stopped");
    expect((await storedStatuses(client, keys, "w1")).size).toBe(0);
    await worker.stop();
    await consumed;
    expect(changes).toEqual([
      { type: "added", task: { id: "x", payload: 1 } },
      { type: "changed", task: { id: "x", payload: 2 }, previous: { id: "x", payload: 1 } },
      { type: "removed", taskId: "x", previous: { id: "x", payload: 2 }, reason: "unassigned" },
    ]);
  });

  it("refuses a handler-less report for a task moved away before its start was claimed, storing nothing", async () => {
    const { client, keys, root } = testSpace("wmoved");
    await putTask(client, keys, "w1", { id: "t2" });
    const worker = testWorker({ root });
    const added = new Promise((resolve) => worker.once("added", resolve));
    await worker.start();
    await added;

    // The master moves t2 away (w1 had written no status, so the hand-off gate lets it through at once).
    await client.delete().key(keys.task("w1", "t2"));
    // Whether or not w1's watch has seen the move yet, the report must not land.
    await expect(worker.reportTaskState("t2", "running")).rejects.toMatchObject({ code: "ERR_NOT_ASSIGNED" });
    await waitFor("the removal", () => worker.tasks().length === 0);
    await expect(worker.reportTaskState("t2", "starting")).rejects.toMatchObject({
      code: "ERR_NOT_ASSIGNED",
    });
    expect(await storedStatuses(client, keys, "w1")).toEqual(new Map());
    await worker.reportTaskState("t2", "stopped");
  });

  it("applies a handler-less task's reports in the order they were made", async () => {
    const { client, keys, root } = testSpace("worder");
    await putTask(client, keys, "w1", { id: "x" });
    const statuses = await recordStatuses(client, keys, "w1");
    const worker = testWorker({ root });
    const added = new Promise((resolve) => worker.once("added", resolve));
    await worker.start();
    await added;

    await Promise.all([
      worker.reportTaskState("x", "starting"),
      worker.reportTaskState("x", "running"),
      worker.reportTaskState("x", "failed", "crashed"),
      worker.reportTaskState("x", "starting"),
    ]);

    await waitFor("four writes", () => statuses.of("x").length === 4);
    expect(statuses.of("x")).toEqual(["starting", "running", "failed", "starting"]);
    expect((await storedStatuses(client, keys, "w1")).get("x")).toMatchObject({
      state: "starting",
      attempt: 2,
    });
  });

  it("reports a handler-less task's states with the attempt its stored status carries", async () => {
    const { client, keys, root } = testSpace("wattempt");
    await putTask(client, keys, "w1", { id: "x" });
    const worker = testWorker({ root });
    const events: string[] = [];
    worker.on("taskState", (change) => events.push(`${change.state}#${change.attempt}`));
    await worker.start();
    await worker.reportTaskState("x", "starting");
    await worker.reportTaskState("x", "running");
    expect((await storedStatuses(client, keys, "w1")).get("x")).toMatchObject({
      state: "running",
      attempt: 1,
    });
    await worker.reportTaskState("x", "stopped");
    await worker.stop();
    expect(events).toEqual(["starting#1", "running#1", "stopped#1"]);
  });

  it("keeps a task's status while its stop overruns the stop timeout, and deletes it once the stop returns", async () => {
    const { client, keys, root } = testSpace("wslow");
    let finishStop!: () => void;
    const stopReturned = new Promise<void>((resolve) => {
      finishStop = resolve;
    });
    const handler = { start: () => {}, stop: () => stopReturned };
    const worker = testWorker({ root, handler, stopTimeoutMs: 100 });
    await worker.start();
    await putTask(client, keys, "w1", { id: "slow" });
    await waitFor(
      "running",
      async () => (await storedStatuses(client, keys, "w1")).get("slow")?.state === "running",
    );
    await client.delete().key(keys.task("w1", "slow"));
    await waitFor(
      "stopping",
      async () => (await storedStatuses(client, keys, "w1")).get("slow")?.state === "stopping",
    );
    await new Promise((resolve) => setTimeout(resolve, 300)); // well past the 100 ms stop timeout
    expect((await storedStatuses(client, keys, "w1")).get("slow")?.state).toBe("stopping");
    finishStop();
    await waitFor("status removed", async () => (await storedStatuses(client, keys, "w1")).size === 0);
  });

  it("starts hundreds of tasks assigned at once and stores every running status", async () => {
    const { client, keys, root } = testSpace("wmany");
    const handler = new RecordingHandler();
    const worker = testWorker({ root, handler });
    await worker.start();
    const ids = Array.from({ length: 300 }, (_, i) => `t${i}`);
    await client.kv.txn({
      compare: [],
      success: ids.slice(0, 128).map((id) => ({
        request_put: { key: Buffer.from(keys.task("w1", id)), value: Buffer.from(JSON.stringify({ id })) },
      })),
      failure: [],
    });
    await Promise.all(ids.slice(128).map((id) => putTask(client, keys, "w1", { id })));
    await waitFor("every status running", async () => {
      const stored = await storedStatuses(client, keys, "w1");
      return stored.size === 300 && [...stored.values()].every((status) => status.state === "running");
    });
    expect(handler.running.size).toBe(300);
    await worker.stop();
    expect((await storedStatuses(client, keys, "w1")).size).toBe(0);
  });

  it("a task deleted and put back during its slow start is stopped and started again, and only then reported running", async () => {
    const { client, keys, root } = testSpace("wreput");
    const handler = new RecordingHandler();
    const contexts: TaskContext[] = [];
    handler.onStart = (_task, ctx) => contexts.push(ctx);
    const worker = testWorker({ root, handler });
    await worker.start();
    handler.hold("t");
    await putTask(client, keys, "w1", { id: "t" });
    await waitFor("the start to be called", () => contexts.length === 1);
    // A drain then an uncordon, as the worker sees them: the key goes, then comes back the same.
    await client.delete().key(keys.task("w1", "t"));
    await waitFor("the start to be aborted", () => contexts[0]?.signal.aborted === true);
    await putTask(client, keys, "w1", { id: "t" });
    await waitFor("the put to reach the worker", () =>
      worker.tasks().some((task) => task.id === "t" && task.task),
    );
    handler.release("t");

    await waitFor("t running, by a start whose signal is live", () =>
      worker.tasks().some((task) => task.id === "t" && task.state === "running"),
    );
    expect(handler.callsFor("t")).toEqual(["start t null", "stop t null", "start t null"]);
    expect(contexts.map((ctx) => ctx.signal.aborted)).toEqual([true, false]);
    await waitFor(
      "the stored status running",
      async () => (await storedStatuses(client, keys, "w1")).get("t")?.state === "running",
    );
  });
});
