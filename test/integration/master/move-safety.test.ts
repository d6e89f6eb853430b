import { describe, expect, it } from "vitest";
import type { HandoffWaitEvent, ScheduleFailedEvent, ScheduleResult } from "../../../src/master/index.js";
import { FencedWriter, leaderFence } from "../../../src/master/fencing.js";
import { pause, readHistory, resume } from "../../../src/operator/index.js";
import type { Task } from "../../../src/node/index.js";
import { testClient, testSpace, waitFor } from "../../helpers/context.js";
import {
  assignment,
  beforeTxn,
  FakeWorker,
  StatusRecorder,
  snapshot,
  tasks,
  testMaster,
  txnWrites,
} from "./fixtures.js";

/** task id → worker, only for tasks on `worker`. */
async function tasksOn(space: ReturnType<typeof testSpace>, worker: string): Promise<string[]> {
  const placed = await assignment(space.client, space.keys);
  return [...placed].filter(([, owner]) => owner === worker).map(([id]) => id);
}

/**
 * Four tasks on w1 (which stops a removed task only when the test releases it), then w2 joins and two
 * tasks start moving: removed from w1, held until w1 stops them. `generate` may block or change.
 */
async function movesBegun(label: string, generate: () => Promise<Task[]> | Task[]) {
  const space = testSpace(label);
  // Long leases: a loaded machine must not end the leadership (and the holds with it) mid-test.
  const w1 = await FakeWorker.start(space.client, space.keys, "w1", { manualStop: true, ttlMs: 10_000 });
  const master = testMaster(space, generate, { handoff: "wait", maxMoving: 4, ttlMs: 10_000 });
  const applied: ScheduleResult[] = [];
  const failed: ScheduleFailedEvent[] = [];
  const handoffs: HandoffWaitEvent[] = [];
  master.on("scheduled", (result) => applied.push(result));
  master.on("scheduleFailed", (event) => failed.push(event));
  master.on("handoffWait", (event) => handoffs.push(event));
  await master.start();
  await waitFor("four tasks on w1", async () => (await tasksOn(space, "w1")).length === 4);
  const recorder = new StatusRecorder(space.client, space.keys);
  await recorder.start();
  await FakeWorker.start(space.client, space.keys, "w2", { ttlMs: 10_000 });
  await waitFor("the rebalance", () => applied.length === 2);
  await waitFor("w1 asked to stop two tasks", () => w1.stopping.length === 2);
  const moving = w1.stopping;
  return { space, w1, master, applied, failed, handoffs, recorder, moving };
}

describe("a move already begun always finishes (issue 19, defect 1)", () => {
  it("when a later schedule is refused by the removal guard", async () => {
    let generated = tasks(4);
    const { space, w1, master, recorder, moving } = await movesBegun("begun-guard", () => generated);

    generated = [];
    await expect(master.scheduleNow("inventory outage")).rejects.toMatchObject({ code: "ERR_REMOVAL_GUARD" });
    for (const id of moving) w1.release(id);
    await waitFor(
      "the moving tasks written to w2",
      async () => (await tasksOn(space, "w2")).length === 2,
      5_000,
    );
    expect((await assignment(space.client, space.keys)).size).toBe(4);
    expect(recorder.overlaps).toEqual([]);
  });

  it("when a later schedule finds schedules paused, and the hand-off completes while paused", async () => {
    let blocked: Promise<void> | undefined;
    let entered = false;
    const { space, w1, master, failed, moving } = await movesBegun("begun-pause", async () => {
      entered = true;
      await blocked;
      return tasks(4);
    });

    let unblock = () => undefined as void;
    blocked = new Promise<void>((resolve) => {
      unblock = resolve;
    });
    entered = false;
    const refused = master.scheduleNow("during the pause").catch((error: { code?: string }) => error.code);
    await waitFor("the schedule called the generator", () => entered);
    await pause(space.client, space.root, { reason: "incident" });
    unblock();
    expect(await refused).toBe("ERR_PAUSED");
    expect(failed).toEqual([]);

    for (const id of moving) w1.release(id);
    await waitFor(
      "the moving tasks written to w2",
      async () => (await tasksOn(space, "w2")).length === 2,
      5_000,
    );
    expect((await tasksOn(space, "w1")).length).toBe(2);
  });
});

describe("pause stops a schedule that is already writing (issue 19, defect 2)", () => {
  it("once pause returns, no task key, no plan and no history record is written; resume applies it all", async () => {
    const space = testSpace("pause-writing");
    // Long leases: a loaded machine must not take w1 away while 600 tasks are written.
    await FakeWorker.start(space.client, space.keys, "w1", { ttlMs: 10_000 });
    const client = testClient(space.endpoints);
    let pausedAt: Promise<number> | undefined;
    // The leader's first task write waits until `escheduler pause` has returned, as if the operator
    // paused while the schedule was writing.
    beforeTxn(
      client,
      (request) => txnWrites(request).puts.some((key) => key.startsWith(space.keys.tasksPrefix)),
      async () => {
        pausedAt ??= pause(space.client, space.root, { reason: "mid-write" }).then(async () =>
          Number((await space.client.get(space.keys.paused).exec()).header.revision),
        );
        await pausedAt;
      },
    );
    const master = testMaster(space, () => tasks(600), { client, handoff: "wait", ttlMs: 10_000 });
    const applied: ScheduleResult[] = [];
    const failed: ScheduleFailedEvent[] = [];
    master.on("scheduled", (result) => applied.push(result));
    master.on("scheduleFailed", (event) => failed.push(event));
    await master.start();
    await waitFor("the pause", () => pausedAt);
    await waitFor("the leader sees the pause", async () => {
      const refusal = await master.scheduleNow("probe").catch((error: { code?: string }) => error.code);
      return refusal === "ERR_PAUSED";
    });

    const after = await snapshot(space.client, space.keys);
    expect(Object.keys(after).filter((key) => key.startsWith(space.keys.tasksPrefix))).toEqual([]);
    expect(after[space.keys.plan]).toBeUndefined();
    expect(await readHistory(space.client, space.root)).toEqual([]);
    expect(applied).toEqual([]);
    expect(failed).toEqual([]);

    await resume(space.client, space.root);
    await waitFor("one schedule after resume", () => applied.length === 1);
    expect(applied[0]).toMatchObject({ workers: 1, added: 600 });
    expect((await assignment(space.client, space.keys)).size).toBe(600);
  });
});

describe("a paced move never waits for a status event that cannot come (issue 19, defect 3)", () => {
  it("the old owner never reported a status: the move is written to the new worker", async () => {
    const space = testSpace("silent-owner");
    await FakeWorker.start(space.client, space.keys, "w1", { reports: false });
    const master = testMaster(space, () => tasks(4), { handoff: "wait", maxMoving: 1 });
    const applied: ScheduleResult[] = [];
    master.on("scheduled", (result) => applied.push(result));
    await master.start();
    await waitFor("four tasks on w1", async () => (await tasksOn(space, "w1")).length === 4);

    await FakeWorker.start(space.client, space.keys, "w2");
    await waitFor("the rebalance", () => applied.length === 2);
    await waitFor("two tasks on w2", async () => (await tasksOn(space, "w2")).length === 2, 5_000);
    expect((await tasksOn(space, "w1")).length).toBe(2);
  });

  it("the old owner's lease goes after the schedule's read: the move is written to the new worker", async () => {
    const space = testSpace("owner-gone");
    const w1 = await FakeWorker.start(space.client, space.keys, "w1");
    const client = testClient(space.endpoints);
    let revoked = false;
    // w1's lease goes between the schedule's read and the removal of its first moving task.
    beforeTxn(
      client,
      (request) =>
        !revoked &&
        txnWrites(request).deletes.some((key) => key.startsWith(space.keys.workerTasksPrefix("w1"))),
      async () => {
        revoked = true;
        await w1.stop();
      },
    );
    // No debounced schedule for w1 going: only the gate can finish the move.
    const master = testMaster(space, () => tasks(4), { client, handoff: "wait", rebalanceWaitMs: 600_000 });
    await master.start();
    await waitFor(
      "four running on w1",
      async () => (await space.client.getAll().prefix(space.keys.statusPrefix).keys()).length === 4,
    );
    await FakeWorker.start(space.client, space.keys, "w2");
    expect(await master.scheduleNow("rebalance")).toMatchObject({ moved: 2 });
    expect(revoked).toBe(true);
    await waitFor("two tasks on w2", async () => (await tasksOn(space, "w2")).length === 2, 5_000);
  });
});

describe("FencedWriter: a write sent unlessPaused (issue 19, defect 2)", () => {
  it("is refused by etcd once /R/paused exists (ERR_PAUSED, still leading), while a completion still lands; a lost leadership stays ERR_DEPOSED", async () => {
    const space = testSpace("fence-paused");
    const client = testClient(space.endpoints);
    const electionKey = space.keys.electionCandidate("1234");
    const created = await client.put(electionKey).value("m").exec();
    const writer = new FencedWriter(client, leaderFence(electionKey, created.header.revision), {
      pausedKey: space.keys.paused,
    });
    const put = (id: string) => ({ type: "put" as const, key: space.keys.task("w", id), value: "{}" });
    await writer.commit([put("before")], { unlessPaused: true });

    await pause(space.client, space.root, { reason: "maintenance" });
    await expect(writer.apply([put("guarded")], { unlessPaused: true })).rejects.toMatchObject({
      code: "ERR_PAUSED",
      message: "schedules are paused (maintenance)",
    });
    await writer.commit([put("completion")]);
    expect(writer.deposed).toBe(false);

    await client.delete().key(electionKey).exec();
    await expect(writer.commit([put("deposed")], { unlessPaused: true })).rejects.toMatchObject({
      code: "ERR_DEPOSED",
    });
    expect((await assignment(space.client, space.keys)).size).toBe(2);
    expect([...(await assignment(space.client, space.keys)).keys()].sort()).toEqual(["before", "completion"]);
  });
});
