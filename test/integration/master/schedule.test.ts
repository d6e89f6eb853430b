import { describe, expect, it } from "vitest";
import type { ScheduleResult } from "../../../src/master/index.js";
import { type PlanRecord, parseRecord } from "../../../src/node/index.js";
import { delay } from "../../../src/runtime/index.js";
import { testSpace, waitFor } from "../../helpers/context.js";
import { assignment, FakeWorker, tasks, testMaster } from "./fixtures.js";

function recordSchedules(master: {
  on(event: "scheduled", listener: (result: ScheduleResult) => void): unknown;
}) {
  const schedules: ScheduleResult[] = [];
  master.on("scheduled", (result) => schedules.push(result));
  return schedules;
}

describe("master schedules", () => {
  it("schedules right after election: every task on a live worker, /R/plan written with the epoch", async () => {
    const space = testSpace("first");
    await FakeWorker.start(space.client, space.keys, "w1");
    await FakeWorker.start(space.client, space.keys, "w2");
    const master = testMaster(space, () => tasks(10, { payload: { v: 1 } }), { name: "m" });
    const schedules = recordSchedules(master);
    await master.start();
    await waitFor("first schedule", () => schedules.length === 1);

    const placed = await assignment(space.client, space.keys);
    expect(placed.size).toBe(10);
    expect([...placed.values()].filter((w) => w === "w1")).toHaveLength(5);
    const plan = parseRecord<PlanRecord>(await space.client.get(space.keys.plan).string());
    expect(plan).toMatchObject({
      leader: "m",
      workers: ["w1", "w2"],
      tasks: 10,
      moved: 0,
      epoch: schedules[0].epoch,
    });
    expect(schedules[0]).toMatchObject({
      reasons: ["elected"],
      tasks: 10,
      added: 10,
      removed: 0,
      workers: 2,
    });
    expect(await space.client.get(space.keys.barrierLeft).string()).not.toBeNull();
    const stored = JSON.parse((await space.client.get(space.keys.task(placed.get("t3")!, "t3")).string())!);
    expect(stored).toEqual({ id: "t3", payload: { v: 1 } });
  });

  it("re-puts a task whose value changed on the same worker, and removes tasks no longer generated", async () => {
    const space = testSpace("update");
    await FakeWorker.start(space.client, space.keys, "w1");
    let version = 1;
    const master = testMaster(space, () =>
      tasks(version === 1 ? 4 : 3).map((t) => ({ ...t, payload: t.id === "t0" ? { version } : undefined })),
    );
    const schedules = recordSchedules(master);
    await master.start();
    await waitFor("first schedule", () => schedules.length === 1);
    version = 2;
    const result = await master.scheduleNow("test");
    expect(result).toMatchObject({ added: 0, updated: 1, removed: 1, tasks: 3 });
    expect(JSON.parse((await space.client.get(space.keys.task("w1", "t0")).string())!).payload).toEqual({
      version: 2,
    });
    expect([...(await assignment(space.client, space.keys)).keys()].sort()).toEqual(["t0", "t1", "t2"]);
    const unchanged = await master.scheduleNow("again");
    expect(unchanged).toMatchObject({ added: 0, updated: 0, removed: 0, moved: 0 });
  });

  it("writes higher-priority tasks first", async () => {
    const space = testSpace("priority");
    await FakeWorker.start(space.client, space.keys, "w1");
    const generated = Array.from({ length: 300 }, (_, i) => ({ id: `t${i}`, priority: i % 3 }));
    const master = testMaster(space, () => generated);
    const schedules = recordSchedules(master);
    await master.start();
    await waitFor("first schedule", () => schedules.length === 1);
    const kvs = (await space.client.getAll().prefix(space.keys.tasksPrefix).exec()).kvs;
    const byRevision = new Map<number, number[]>();
    for (const kv of kvs) {
      const priorities = byRevision.get(Number(kv.mod_revision)) ?? [];
      priorities.push(JSON.parse(kv.value.toString()).priority ?? 0);
      byRevision.set(Number(kv.mod_revision), priorities);
    }
    const inCommitOrder = [...byRevision].sort(([a], [b]) => a - b).map(([, priorities]) => priorities);
    expect(inCommitOrder.length).toBeGreaterThan(1);
    for (let i = 1; i < inCommitOrder.length; i++) {
      expect(Math.max(...inCommitOrder[i])).toBeLessThanOrEqual(Math.min(...inCommitOrder[i - 1]));
    }
  });

  it("removes the tasks of a worker that is gone and gives them to the others", async () => {
    const space = testSpace("leave");
    await FakeWorker.start(space.client, space.keys, "w1");
    const w2 = await FakeWorker.start(space.client, space.keys, "w2");
    const master = testMaster(space, () => tasks(6));
    const schedules = recordSchedules(master);
    await master.start();
    await waitFor("first schedule", () => schedules.length === 1);
    await w2.stop();
    await waitFor("rebalance", () => schedules.length === 2);
    expect(schedules[1]).toMatchObject({ reasons: ["workers"], removed: 3, added: 3, moved: 3 });
    expect(new Set((await assignment(space.client, space.keys)).values())).toEqual(new Set(["w1"]));
  });

  it("leaves the assignment alone and writes nothing when no worker is live… except removing dead workers' tasks", async () => {
    const space = testSpace("empty");
    const w1 = await FakeWorker.start(space.client, space.keys, "w1");
    const master = testMaster(space, () => tasks(2));
    const schedules = recordSchedules(master);
    await master.start();
    await waitFor("first schedule", () => schedules.length === 1);
    await w1.stop();
    await waitFor("rebalance", () => schedules.length === 2);
    expect(schedules[1]).toMatchObject({ workers: 0, removed: 2, added: 0, unassigned: 2 });
    expect((await assignment(space.client, space.keys)).size).toBe(0);
  });
});

describe("master triggers", () => {
  it("turns a burst of worker changes into exactly one trailing schedule", async () => {
    const space = testSpace("burst");
    await FakeWorker.start(space.client, space.keys, "w0");
    const rebalanceWaitMs = 500;
    const master = testMaster(space, () => tasks(20), { rebalanceWaitMs });
    const schedules = recordSchedules(master);
    await master.start();
    await waitFor("first schedule", () => schedules.length === 1);

    // A burst: well within twice the wait, the bound after which a schedule comes in any case.
    await Promise.all([1, 2, 3, 4, 5, 6].map((i) => FakeWorker.start(space.client, space.keys, `w${i}`)));
    await waitFor("the trailing schedule", () => schedules.length === 2);
    // Absence can only be shown by waiting: three more quiet periods bring nothing.
    await delay(rebalanceWaitMs * 3);
    expect(schedules).toHaveLength(2);
    expect(schedules[1]).toMatchObject({ reasons: ["workers"], workers: 7 });
  });

  it("schedules for a joined worker while a script keeps rewriting a registration (the wait is bounded)", async () => {
    const space = testSpace("restless");
    await FakeWorker.start(space.client, space.keys, "w0");
    const rebalanceWaitMs = 300;
    const master = testMaster(space, () => tasks(10), { rebalanceWaitMs });
    const schedules = recordSchedules(master);
    await master.start();
    await waitFor("first schedule", () => schedules.length === 1);

    // A registration without a lease, rewritten every 100 ms: no worker, but a change each time.
    let rewriting = true;
    const script = (async () => {
      for (let i = 0; rewriting; i++) {
        await space.client.put(space.keys.worker("ghost")).value(JSON.stringify({ name: "ghost", i }));
        await delay(100);
      }
    })();
    try {
      await delay(rebalanceWaitMs); // the rewrites have begun: the debounce is running
      await FakeWorker.start(space.client, space.keys, "w1");
      // Unbounded, the debounce would wait for the rewrites to stop (and the interval is 10 minutes).
      await waitFor(
        "a schedule with the joined worker",
        () => schedules.some((s) => s.workers === 2),
        10_000,
      );
      expect(rewriting).toBe(true);
    } finally {
      rewriting = false;
      await script;
    }
  });

  it("runs no debounced schedule for worker changes that a schedule has already read", async () => {
    const space = testSpace("covered");
    await FakeWorker.start(space.client, space.keys, "w0");
    const rebalanceWaitMs = 400;
    const master = testMaster(space, () => tasks(10), { rebalanceWaitMs });
    const schedules = recordSchedules(master);
    await master.start();
    await waitFor("first schedule", () => schedules.length === 1);

    await FakeWorker.start(space.client, space.keys, "w1");
    await delay(50); // the master's watch has the registration by now: its debounce is running
    expect(await master.scheduleNow("operator")).toMatchObject({ workers: 2 });
    // Absence can only be shown by waiting: the debounced schedule would come one rebalance wait after the join.
    await delay(rebalanceWaitMs * 3);
    expect(schedules.slice(1).map((schedule) => schedule.reasons)).toEqual([["operator"]]);
  });

  it("schedules again for a worker that joined while the generator ran (its read saw the worker, the generator did not)", async () => {
    const space = testSpace("joined-while-generating");
    await FakeWorker.start(space.client, space.keys, "w0");
    let generating: (() => void) | undefined;
    // One task per live worker, as a daemon set's generator makes them.
    const master = testMaster(
      space,
      async ({ workers }) => {
        generating?.();
        await delay(300);
        return workers.map((worker) => ({ id: `daemon-${worker}` }));
      },
      { rebalanceWaitMs: 300 },
    );
    const schedules = recordSchedules(master);
    await master.start();
    await waitFor("first schedule", () => schedules.length === 1);

    const started = new Promise<void>((resolve) => (generating = resolve));
    const operator = master.scheduleNow("operator");
    await started;
    generating = undefined;
    await FakeWorker.start(space.client, space.keys, "w1");
    expect(await operator).toMatchObject({ tasks: 1 });
    // The interval is 10 minutes: only the debounced schedule can make w1's task.
    await waitFor("a schedule with w1's task", () => schedules.some((s) => s.tasks === 2), 10_000);
  });

  it("runs exactly one more schedule for any number of triggers during a running one", async () => {
    const space = testSpace("coalesce");
    await FakeWorker.start(space.client, space.keys, "w1");
    let release: (() => void) | undefined;
    let calls = 0;
    const master = testMaster(
      space,
      async () => {
        calls++;
        if (calls === 2) await new Promise<void>((resolve) => (release = resolve));
        return tasks(5);
      },
      { rebalanceWaitMs: 10 },
    );
    const schedules = recordSchedules(master);
    await master.start();
    await waitFor("first schedule", () => schedules.length === 1);

    const running = master.scheduleNow("first");
    await waitFor("second schedule to be generating", () => release !== undefined);
    const queued = [master.scheduleNow("a"), master.scheduleNow("b")];
    await FakeWorker.start(space.client, space.keys, "w2");
    await delay(100); // past the debounce: the worker trigger is queued too
    release?.();
    const results = await Promise.all([running, ...queued]);
    expect(results[0]?.reasons).toEqual(["first"]);
    expect(results[1]).toBe(results[2]);
    expect(new Set(results[1]?.reasons)).toEqual(new Set(["a", "b", "workers"]));
    await delay(200);
    expect(schedules).toHaveLength(3);
    expect(calls).toBe(3);
  });

  it("schedules every interval", async () => {
    const space = testSpace("interval");
    await FakeWorker.start(space.client, space.keys, "w1");
    const master = testMaster(space, () => tasks(2), { intervalMs: 200 });
    const schedules = recordSchedules(master);
    await master.start();
    await waitFor(
      "two interval schedules",
      () => schedules.filter((s) => s.reasons.includes("interval")).length >= 2,
    );
  });

  it("first start: waits in the barrier for the expected workers, then sets the marker and schedules", async () => {
    const space = testSpace("gather");
    await FakeWorker.start(space.client, space.keys, "w1");
    const master = testMaster(space, () => tasks(2), { expectedWorkers: 1, barrierTimeoutMs: 300 });
    const schedules = recordSchedules(master);
    const startedAt = Date.now();
    await master.start();
    await waitFor("schedule after the barrier timed out", () => schedules.length === 1);
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(300);
    expect(await space.client.get(space.keys.barrierLeft).string()).not.toBeNull();
    expect((await assignment(space.client, space.keys)).size).toBe(2);
  });

  it("skips the gathering when the marker is already set", async () => {
    const space = testSpace("marker");
    await space.client.put(space.keys.barrierLeft).value(new Date().toISOString());
    await FakeWorker.start(space.client, space.keys, "w1");
    const master = testMaster(space, () => tasks(2), { expectedWorkers: 5, barrierTimeoutMs: 60_000 });
    const schedules = recordSchedules(master);
    await master.start();
    await waitFor("schedule at once", () => schedules.length === 1, 3_000);
  });
});
