import { describe, expect, it } from "vitest";
import type { ScheduleFailedEvent, ScheduleResult } from "../../../src/master/index.js";
import { historyWrites } from "../../../src/master/history.js";
import type { HistoryRecord, PlanRecord } from "../../../src/node/index.js";
import { parseRecord } from "../../../src/node/index.js";
import {
  cordon,
  drain,
  pause,
  readHistory,
  requestSchedule,
  resume,
  uncordon,
} from "../../../src/operator/index.js";
import { testSpace, waitFor } from "../../helpers/context.js";
import { assignment, FakeWorker, snapshot, tasks, testMaster } from "./fixtures.js";

function recorded(master: {
  on(event: "scheduled", listener: (result: ScheduleResult) => void): unknown;
  on(event: "scheduleFailed", listener: (event: ScheduleFailedEvent) => void): unknown;
}) {
  const applied: ScheduleResult[] = [];
  const failed: ScheduleFailedEvent[] = [];
  master.on("scheduled", (result) => applied.push(result));
  master.on("scheduleFailed", (event) => failed.push(event));
  return { applied, failed };
}

const perWorker = (placed: Map<string, string>) => {
  const counts: Record<string, number> = {};
  for (const worker of placed.values()) counts[worker] = (counts[worker] ?? 0) + 1;
  return counts;
};

describe("master: operator controls", () => {
  it("writes nothing while paused, across a failover, and runs one schedule on resume", async () => {
    const space = testSpace("pause");
    await FakeWorker.start(space.client, space.keys, "w1");
    let count = 4;
    const first = testMaster(space, () => tasks(count), { name: "m1" });
    const firstSchedules = recorded(first);
    await first.start();
    await waitFor("first schedule", () => firstSchedules.applied.length === 1);

    await pause(space.client, space.root, { reason: "incident" });
    await waitFor("the leader sees the pause", async () => {
      count = 6;
      const refusal = await first.scheduleNow("probe").catch((error: { code?: string }) => error.code);
      return refusal === "ERR_PAUSED";
    });
    expect(firstSchedules.applied).toHaveLength(1);
    const before = await snapshot(space.client, space.keys);
    await FakeWorker.start(space.client, space.keys, "w2");
    const frozen = await snapshot(space.client, space.keys);
    await first.stop();
    const second = testMaster(space, () => tasks(count), { name: "m2" });
    const secondSchedules = recorded(second);
    await second.start();
    // Asked at once: m2 may find the request in its first read of the requests or see it arrive.
    const outcome = await requestSchedule(space.client, space.root, { timeoutMs: 5_000 });
    expect(secondSchedules.applied).toEqual([]);
    expect(outcome).toMatchObject({
      state: "refused",
      reason: "schedules are paused (incident)",
      leader: "m2",
    });
    expect(Object.keys(frozen).filter((key) => !(key in before))).toEqual([space.keys.worker("w2")]);
    const { [space.keys.worker("w2")]: _w2, ...withoutW2 } = await snapshot(space.client, space.keys);
    const { [space.keys.worker("w2")]: _w2b, ...frozenWithoutW2 } = frozen;
    // The request's own audit record is the operator's write; the leader wrote nothing.
    const audited = Object.keys(withoutW2).filter((key) => !(key in frozenWithoutW2));
    expect(audited).toEqual([expect.stringMatching(`^${space.keys.auditPrefix}`)]);
    for (const key of audited) delete withoutW2[key];
    expect(withoutW2).toEqual(frozenWithoutW2);

    await resume(space.client, space.root);
    await waitFor("one schedule after resume", () => secondSchedules.applied.length === 1);
    expect(secondSchedules.applied[0].reasons).toEqual(expect.arrayContaining(["elected", "resumed"]));
    // The moved task reaches w2 through the hand-off, after the schedule that began it was applied.
    await waitFor("w1 and w2 holding 3 tasks each", async () => {
      const counts = perWorker(await assignment(space.client, space.keys));
      return counts.w1 === 3 && counts.w2 === 3;
    });
  });

  it("the removal guard refuses an empty generator (etcd unchanged, a refused history record) until one schedule is allowed", async () => {
    const space = testSpace("guard");
    await FakeWorker.start(space.client, space.keys, "w1");
    let count = 10;
    const master = testMaster(space, () => tasks(count), { name: "m" });
    const schedules = recorded(master);
    await master.start();
    await waitFor("first schedule", () => schedules.applied.length === 1);
    const before = await assignment(space.client, space.keys);

    count = 0;
    await expect(master.scheduleNow("inventory")).rejects.toMatchObject({ code: "ERR_REMOVAL_GUARD" });
    expect(schedules.failed.map((event) => event.reason)).toEqual(["removal_guard"]);
    expect(await assignment(space.client, space.keys)).toEqual(before);
    const [refused] = (await readHistory(space.client, space.root, { limit: 1 })) as HistoryRecord[];
    expect(refused).toMatchObject({ outcome: "refused", reasons: ["inventory"], removed: 10 });
    expect(refused.refusal).toContain("10 of 10");

    // Five of ten removed is within the default 50 %.
    count = 5;
    await master.scheduleNow("half");
    expect((await assignment(space.client, space.keys)).size).toBe(5);
    count = 0;
    const outcome = await requestSchedule(space.client, space.root, {
      allowRemoval: true,
      reason: "decommission",
    });
    expect(outcome).toMatchObject({ state: "applied", leader: "m" });
    expect((await assignment(space.client, space.keys)).size).toBe(0);
    const history = await readHistory(space.client, space.root, { task: "t7" });
    expect(history.map((entry) => [entry.outcome, entry.moves.find((m) => m.id === "t7")])).toEqual([
      ["applied", { id: "t7", to: "w1" }],
      ["refused", { id: "t7", from: "w1" }],
      ["applied", { id: "t7", from: "w1" }],
    ]);
  });

  it("drain hands a worker's tasks off and keeps it in the plan; cordon keeps its tasks and gives new ones to others", async () => {
    const space = testSpace("cordon");
    await FakeWorker.start(space.client, space.keys, "w1");
    await FakeWorker.start(space.client, space.keys, "w2");
    let count = 6;
    const master = testMaster(space, () => tasks(count), { name: "m" });
    const schedules = recorded(master);
    await master.start();
    await waitFor("first schedule", () => schedules.applied.length === 1);

    await drain(space.client, space.root, "w1");
    await waitFor("w1 drained", async () => perWorker(await assignment(space.client, space.keys)).w2 === 6);
    const plan = parseRecord<PlanRecord>(await space.client.get(space.keys.plan).string());
    expect(plan?.workers).toEqual(["w1", "w2"]);

    await uncordon(space.client, space.root, "w1");
    await waitFor("rebalanced", async () => perWorker(await assignment(space.client, space.keys)).w1 === 3);
    await cordon(space.client, space.root, "w2");
    await waitFor("the cordon's schedule", () => schedules.applied.at(-1)?.reasons.includes("cordon"));
    count = 10;
    await master.scheduleNow("more");
    expect(perWorker(await assignment(space.client, space.keys))).toEqual({ w1: 7, w2: 3 });
  });

  it("keeps the last N history records, trimming the oldest in the same write", async () => {
    const space = testSpace("trim");
    const record = { at: "", leader: "m", epoch: 1, outcome: "applied" } as HistoryRecord;
    for (let revision = 1; revision <= 5; revision++) {
      await space.client.put(space.keys.history(revision)).value(JSON.stringify(record));
    }
    const ops = await historyWrites(space.client, space.keys, 9, record, 3);
    expect(ops).toEqual([
      { type: "delete", key: space.keys.history(1) },
      { type: "delete", key: space.keys.history(2) },
      { type: "delete", key: space.keys.history(3) },
      { type: "put", key: space.keys.history(9), value: JSON.stringify(record) },
    ]);
  });
});
