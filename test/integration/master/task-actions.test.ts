import { describe, expect, it } from "vitest";
import type { ScheduleResult } from "../../../src/master/index.js";
import { type PlanRecord, parseRecord, type Task } from "../../../src/node/index.js";
import {
  cordon,
  drain,
  moveTask,
  pinTask,
  readHistory,
  restartTask,
  unpinTask,
} from "../../../src/operator/index.js";
import type { StartStopHandler, TaskContext } from "../../../src/worker/handler.js";
import { testSpace, waitFor } from "../../helpers/context.js";
import { doubleRuns, runIntervals, type TaskEvent } from "../../invariants/index.js";
import { testWorker } from "../worker/fixtures.js";
import { assignment, tasks, testMaster } from "./fixtures.js";

/** Records every start and stop with its worker, as the handlers themselves see them. */
function recordingHandler(
  events: TaskEvent[],
  stopGates = new Map<string, Promise<void>>(),
): StartStopHandler {
  const record = (event: TaskEvent["event"], task: Task, ctx: TaskContext) =>
    events.push({
      t: performance.timeOrigin + performance.now(),
      worker: ctx.worker,
      pid: 0,
      task: task.id,
      event,
    });
  return {
    start: async (task, ctx) => record("start", task, ctx),
    // A stop that takes a while: a new owner starting too early would overlap visibly.
    stop: async (task, ctx) => {
      await new Promise((resolve) => setTimeout(resolve, 100));
      await stopGates.get(task.id);
      record("stop", task, ctx);
    },
  };
}

/** Worker names as pids, so the invariant checker tells the in-process workers apart. */
function intervalsOf(events: readonly TaskEvent[]) {
  const pids = new Map<string, number>();
  const byWorker = events.map((event) => {
    if (!pids.has(event.worker)) pids.set(event.worker, pids.size + 1);
    return { ...event, pid: pids.get(event.worker) ?? 0 };
  });
  return runIntervals(byWorker, []);
}

async function fleet(label: string, count: number, workerNames = ["w1", "w2"]) {
  const space = testSpace(label);
  const events: TaskEvent[] = [];
  const stopGates = new Map<string, Promise<void>>();
  const workers = workerNames.map((name) =>
    testWorker({
      root: space.root,
      name,
      client: space.client,
      handler: recordingHandler(events, stopGates),
      ttlMs: 5_000,
    }),
  );
  await Promise.all(workers.map((worker) => worker.start()));
  const applied: ScheduleResult[] = [];
  const master = testMaster(space, () => tasks(count), { name: "m1", ttlMs: 5_000 });
  master.on("scheduled", (result) => applied.push(result));
  await master.start();
  await waitFor("every task running", () => {
    const started = new Set(events.filter((event) => event.event === "start").map((event) => event.task));
    return started.size === count;
  });
  return { space, events, workers, master, applied, stopGates };
}

describe("per-task operator actions", () => {
  it("restart stops the task and starts it again on the same worker, touching no other task", async () => {
    const { space, events } = await fleet("restart", 4);
    const owner = (await assignment(space.client, space.keys)).get("t1");
    const before = events.length;
    const outcome = await restartTask(space.client, space.root, "t1", { by: "alice@ops", reason: "stuck" });
    expect(outcome).toMatchObject({ state: "applied", leader: "m1" });
    await waitFor("t1 started again", () => events.slice(before).some((event) => event.event === "start"));
    expect(events.slice(before).map((event) => `${event.event} ${event.task} ${event.worker}`)).toEqual([
      `stop t1 ${owner}`,
      `start t1 ${owner}`,
    ]);
    expect((await assignment(space.client, space.keys)).get("t1")).toBe(owner);
    // Recorded as a move begun while it ran (a next leader would finish it), gone once written back.
    expect(await space.client.getAll().prefix(space.keys.movesPrefix).keys()).toEqual([]);
    const intervals = intervalsOf(events);
    expect(intervals.problems).toEqual([]);
    expect(doubleRuns(intervals.intervals)).toEqual([]);
    const [last] = await readHistory(space.client, space.root, { limit: 1 });
    expect(last.reasons).toContain("task restart t1 by alice@ops: stuck");
  });

  it("restart on a cordoned worker starts the task again there, whatever schedules run while it stops", async () => {
    const { space, events, master, stopGates } = await fleet("restart-cordoned", 4);
    const owner = (await assignment(space.client, space.keys)).get("t2") ?? "";
    await cordon(space.client, space.root, owner, { by: "ops" });
    let stopped = () => {};
    stopGates.set("t2", new Promise<void>((resolve) => (stopped = resolve)));
    const before = events.length;
    expect(await restartTask(space.client, space.root, "t2")).toMatchObject({ state: "applied" });
    // A schedule while the old run still stops: the task is in no worker's keys, held for its worker.
    await master.scheduleNow("while t2 stops");
    stopped();
    await waitFor("t2 started again", () => events.slice(before).some((event) => event.event === "start"));
    expect(events.slice(before).map((event) => `${event.event} ${event.task} ${event.worker}`)).toEqual([
      `stop t2 ${owner}`,
      `start t2 ${owner}`,
    ]);
  });

  it("a restart begun by a leader that stops is finished on the same worker by the next one", async () => {
    const { space, events, master, stopGates } = await fleet("restart-failover", 4);
    const owner = (await assignment(space.client, space.keys)).get("t3") ?? "";
    // Cordoned: only a leader that knows the restart gives the task back to it.
    await cordon(space.client, space.root, owner);
    let stopped = () => {};
    stopGates.set("t3", new Promise<void>((resolve) => (stopped = resolve)));
    const before = events.length;
    expect(await restartTask(space.client, space.root, "t3")).toMatchObject({ state: "applied" });
    await master.stop();
    const second = testMaster(space, () => tasks(4), { name: "m2", ttlMs: 5_000 });
    await second.start();
    await waitFor(
      "m2 schedules",
      async () => (await second.scheduleNow("m2").catch(() => undefined)) !== undefined,
    );
    stopped();
    await waitFor("t3 started again", () => events.slice(before).some((event) => event.event === "start"));
    expect(events.slice(before).map((event) => `${event.event} ${event.task} ${event.worker}`)).toEqual([
      `stop t3 ${owner}`,
      `start t3 ${owner}`,
    ]);
  });

  it("move is exactly one move through the hand-off gate; refused for a cordoned or unknown target", async () => {
    const { space, events, applied } = await fleet("move", 3);
    const placed = await assignment(space.client, space.keys);
    const counts = (worker: string) => [...placed.values()].filter((owner) => owner === worker).length;
    const [from, to] = counts("w1") === 2 ? ["w1", "w2"] : ["w2", "w1"];
    const task = [...placed].find(([, owner]) => owner === from)?.[0] ?? "";
    const before = events.length;
    const schedules = applied.length;

    const outcome = await moveTask(space.client, space.root, task, to, { by: "bob@ops", reason: "hot host" });
    expect(outcome).toMatchObject({ state: "applied" });
    await waitFor("the task started on its new worker", () =>
      events.slice(before).some((event) => event.event === "start" && event.worker === to),
    );
    expect(events.slice(before).map((event) => `${event.event} ${event.task} ${event.worker}`)).toEqual([
      `stop ${task} ${from}`,
      `start ${task} ${to}`,
    ]);
    expect(applied.slice(schedules).map((result) => result.moved)).toEqual([1]);
    const [last] = await readHistory(space.client, space.root, { limit: 1 });
    expect(last.moves).toEqual([{ id: task, from, to }]);
    expect(last.reasons).toEqual([`task move ${task} → ${to} by bob@ops: hot host`]);
    const intervals = intervalsOf(events);
    expect(doubleRuns(intervals.intervals)).toEqual([]);

    await cordon(space.client, space.root, from, { by: "carol" });
    const other =
      [...(await assignment(space.client, space.keys))].find(([, owner]) => owner === to)?.[0] ?? "";
    expect(await moveTask(space.client, space.root, other, from)).toMatchObject({
      state: "refused",
      reason: `cannot move ${other} to ${from}: ${from} is cordoned`,
    });
    expect(await moveTask(space.client, space.root, other, "ghost")).toMatchObject({
      state: "refused",
      reason: `cannot move ${other} to ghost: ghost is not registered`,
    });
    expect(await restartTask(space.client, space.root, "nope")).toMatchObject({
      state: "refused",
      reason: "task nope is not generated",
    });
  });

  it("a pin holds across schedules and a leader change; a pin to a draining worker is ignored with the reason", async () => {
    const { space, master } = await fleet("pin", 4, ["w1", "w2", "w3"]);
    const placed = await assignment(space.client, space.keys);
    const target = ["w1", "w2", "w3"].find((worker) => placed.get("t0") !== worker) ?? "";
    await pinTask(space.client, space.root, "t0", target, { by: "dave", reason: "debugging" });
    await waitFor(
      "t0 on its pinned worker",
      async () => (await assignment(space.client, space.keys)).get("t0") === target,
    );
    await master.scheduleNow("after the pin");
    expect((await assignment(space.client, space.keys)).get("t0")).toBe(target);

    await master.stop();
    const second = testMaster(space, () => tasks(4), { name: "m2", ttlMs: 5_000 });
    await second.start();
    await waitFor(
      "m2 leads",
      async () => (await second.scheduleNow("m2").catch(() => undefined)) !== undefined,
    );
    expect((await assignment(space.client, space.keys)).get("t0")).toBe(target);

    await drain(space.client, space.root, target, { by: "erin" });
    await waitFor(
      "t0 moved off the draining worker",
      async () => (await assignment(space.client, space.keys)).get("t0") !== target,
    );
    // The plan record is written once the schedule's task writes are done.
    const ignoredPins = async () =>
      parseRecord<PlanRecord>(await space.client.get(space.keys.plan).string())?.ignoredPins;
    await waitFor("the plan names the ignored pin", async () => (await ignoredPins()) !== undefined);
    expect(await ignoredPins()).toEqual([{ id: "t0", worker: target, reason: `${target} is draining` }]);

    expect(await unpinTask(space.client, space.root, "t0", { by: "dave" })).toMatchObject({
      worker: target,
      by: "dave",
    });
    expect(await unpinTask(space.client, space.root, "t0")).toBeUndefined();
    await expect(pinTask(space.client, space.root, "t0", "ghost")).rejects.toMatchObject({
      code: "ERR_UNKNOWN_WORKER",
    });
  });
});
