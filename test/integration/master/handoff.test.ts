import { describe, expect, it } from "vitest";
import type { HandoffWaitEvent, ScheduleResult } from "../../../src/master/index.js";
import { prefixRangeEnd } from "../../../src/node/index.js";
import { pause, resume } from "../../../src/operator/index.js";
import { testClient, testSpace, waitFor } from "../../helpers/context.js";
import { assignment, countPuts, FakeWorker, StatusRecorder, tasks, testMaster } from "./fixtures.js";

async function statusOwners(space: ReturnType<typeof testSpace>): Promise<Map<string, string[]>> {
  const owners = new Map<string, string[]>();
  for (const key of await space.client.getAll().prefix(space.keys.statusPrefix).keys()) {
    const parts = space.keys.parseStatus(key);
    if (parts) owners.set(parts.taskId, [...(owners.get(parts.taskId) ?? []), parts.worker]);
  }
  return owners;
}

/** Four tasks running on w1, a master with the given hand-off mode (moves unpaced), and a recorder of every status change. */
async function fleetOnOneWorker(
  label: string,
  handoff: "wait" | "immediate",
  w1Options: { stopDelayMs?: number; manualStop?: boolean },
) {
  const space = testSpace(label);
  const w1 = await FakeWorker.start(space.client, space.keys, "w1", w1Options);
  const master = testMaster(space, () => tasks(4), { handoff, maxMoving: 4 });
  const schedules: ScheduleResult[] = [];
  const handoffs: HandoffWaitEvent[] = [];
  master.on("scheduled", (result) => schedules.push(result));
  master.on("handoffWait", (event) => handoffs.push(event));
  await master.start();
  await waitFor("all four running on w1", async () => (await statusOwners(space)).size === 4);
  const recorder = new StatusRecorder(space.client, space.keys);
  await recorder.start();
  return { space, w1, master, schedules, handoffs, recorder };
}

describe("hand-off (wait)", () => {
  it("a task moved to a joining worker is written there only after the old worker stopped it", async () => {
    const { space, schedules, handoffs, recorder } = await fleetOnOneWorker("handoff", "wait", {
      stopDelayMs: 300,
    });
    const w2Puts = await countPuts(space.client, space.keys.workerTasksPrefix("w2"));
    await FakeWorker.start(space.client, space.keys, "w2");

    await waitFor("the rebalance", () => schedules.length === 2);
    expect(schedules[1]).toMatchObject({ moved: 2, handoffs: 2 });
    await waitFor(
      "two tasks running on w2",
      async () =>
        [...(await statusOwners(space)).values()].filter((owners) => owners.join() === "w2").length === 2,
    );
    expect(recorder.overlaps).toEqual([]);
    expect(handoffs).toHaveLength(2);
    for (const event of handoffs) {
      expect(event).toMatchObject({ from: "w1", to: "w2" });
      expect(event.ms).toBeGreaterThanOrEqual(250);
    }
    expect([...w2Puts.puts.values()]).toEqual([1, 1]);
  });

  it("with `immediate` the same move overlaps (so the check above can fail)", async () => {
    const { space, schedules, recorder } = await fleetOnOneWorker("immediate", "immediate", {
      stopDelayMs: 300,
    });
    await FakeWorker.start(space.client, space.keys, "w2");
    await waitFor("the rebalance", () => schedules.length === 2);
    expect(schedules[1]).toMatchObject({ moved: 2, handoffs: 0 });
    await waitFor("w2 reports its tasks while w1 still stops them", () => recorder.overlaps.length === 2);
  });

  it("a hand-off still pending when later schedules run is written once, to the current target", async () => {
    const { space, w1, master, schedules, recorder } = await fleetOnOneWorker("pending", "wait", {
      manualStop: true,
    });
    const w2Puts = await countPuts(space.client, space.keys.workerTasksPrefix("w2"));
    await FakeWorker.start(space.client, space.keys, "w2");
    await waitFor("the rebalance", () => schedules.length === 2);
    await waitFor("w1 asked to stop two tasks", () => w1.stopping.length === 2);

    for (const reason of ["again", "and again"]) {
      expect(await master.scheduleNow(reason)).toMatchObject({ added: 2, handoffs: 2 });
    }
    expect(w2Puts.puts.size).toBe(0);

    for (const id of w1.stopping) w1.release(id);
    await waitFor("the two tasks on w2", async () => {
      const placed = await assignment(space.client, space.keys);
      return [...placed.values()].filter((worker) => worker === "w2").length === 2;
    });
    await waitFor("w2 reports them", async () => (await statusOwners(space)).size === 4);
    expect([...w2Puts.puts.values()]).toEqual([1, 1]);
    expect(recorder.overlaps).toEqual([]);
  });

  it("a pending hand-off whose target leaves is never written to it", async () => {
    const { space, w1, schedules, recorder } = await fleetOnOneWorker("stale", "wait", { manualStop: true });
    const w2Puts = await countPuts(space.client, space.keys.workerTasksPrefix("w2"));
    const w2 = await FakeWorker.start(space.client, space.keys, "w2");
    await waitFor("the rebalance", () => schedules.length === 2);
    await waitFor("w1 asked to stop two tasks", () => w1.stopping.length === 2);
    const moving = w1.stopping;

    await w2.stop();
    await waitFor("the next rebalance", () => schedules.length === 3);
    for (const id of moving) w1.release(id);
    await waitFor("all four back on w1", async () => {
      const placed = await assignment(space.client, space.keys);
      return placed.size === 4 && [...placed.values()].every((worker) => worker === "w1");
    });
    expect(w2Puts.puts.size).toBe(0);
    expect(recorder.overlaps).toEqual([]);
  });

  it("a pending hand-off proceeds when the old worker dies (its lease takes the status keys)", async () => {
    const { space, w1, schedules, recorder } = await fleetOnOneWorker("dies", "wait", { manualStop: true });
    await FakeWorker.start(space.client, space.keys, "w2");
    await waitFor("the rebalance", () => schedules.length === 2);
    await waitFor("w1 asked to stop two tasks", () => w1.stopping.length === 2);

    await w1.session.close();
    await waitFor("all four running on w2", async () => {
      const owners = await statusOwners(space);
      return owners.size === 4 && [...owners.values()].every((o) => o.join() === "w2");
    });
    expect(recorder.overlaps).toEqual([]);
  });

  it("moves a gone worker's tasks reading only its statuses, each in one transaction with its removal", async () => {
    const space = testSpace("gone-reads");
    const client = testClient(space.endpoints);
    const w1 = await FakeWorker.start(space.client, space.keys, "w1");
    await FakeWorker.start(space.client, space.keys, "w2");
    const master = testMaster(space, () => tasks(6), { handoff: "wait", client });
    await master.start();
    await waitFor("all six running", async () => (await statusOwners(space)).size === 6);
    const onW1 = [...(await assignment(space.client, space.keys)).entries()].filter(
      ([, worker]) => worker === "w1",
    );
    // Every range the master reads from now on (all its reads go through transactions), and its writes.
    const ranges: string[] = [];
    const writes: string[][] = [];
    const txn = client.kv.txn.bind(client.kv);
    client.kv.txn = (request, ...rest) => {
      const written: string[] = [];
      for (const op of request.success ?? []) {
        const range = op.request_range;
        if (range) ranges.push(`${String(range.key)}..${String(range.range_end ?? "")}`);
        if (op.request_put) written.push(`put ${String(op.request_put.key)}`);
        if (op.request_delete_range) written.push(`delete ${String(op.request_delete_range.key)}`);
      }
      writes.push(written);
      return txn(request, ...rest);
    };

    await w1.stop();
    await waitFor("all six running on w2", async () => {
      const owners = await statusOwners(space);
      return owners.size === 6 && [...owners.values()].every((o) => o.join() === "w2");
    });
    const { statusPrefix } = space.keys;
    expect(ranges).toContain(
      `${space.keys.workerStatusPrefix("w1")}..${prefixRangeEnd(space.keys.workerStatusPrefix("w1"))}`,
    );
    expect(ranges).not.toContain(`${statusPrefix}..${prefixRangeEnd(statusPrefix)}`);
    // Nothing runs them: no move record, and no moment between owners.
    expect(onW1.length).toBeGreaterThan(0);
    expect(writes.flat().filter((write) => write.startsWith(`put ${space.keys.movesPrefix}`))).toEqual([]);
    for (const [taskId] of onW1) {
      const together = [`put ${space.keys.task("w2", taskId)}`, `delete ${space.keys.task("w1", taskId)}`];
      expect(writes.filter((written) => together.every((write) => written.includes(write)))).toHaveLength(1);
    }
  });
});

describe("hand-off of hostile data", () => {
  it("moves a task whose key was copied onto a second worker when both crash, and schedules on", async () => {
    const space = testSpace("dup-gone");
    const g1 = await FakeWorker.start(space.client, space.keys, "g1");
    const g2 = await FakeWorker.start(space.client, space.keys, "g2");
    await FakeWorker.start(space.client, space.keys, "live");
    let generated = 400;
    const master = testMaster(space, () => tasks(generated), { handoff: "wait", rebalanceWaitMs: 100 });
    const failures: string[] = [];
    master.on("scheduleFailed", (failure) => failures.push(failure.error.message));
    await master.start();
    await waitFor("all assigned", async () => (await assignment(space.client, space.keys)).size === 400);
    const [taskId] =
      [...(await assignment(space.client, space.keys))].find(([, worker]) => worker === "g1") ?? [];
    const value = await space.client.get(space.keys.task("g1", String(taskId))).string();
    await space.client.put(space.keys.task("g2", String(taskId))).value(String(value));

    await Promise.all([g1.stop(), g2.stop()]);
    const onLiveOnly = async (count: number) => {
      const keys = await space.client.getAll().prefix(space.keys.tasksPrefix).keys();
      return keys.length === count && keys.every((key) => space.keys.parseTask(key)?.worker === "live");
    };
    await waitFor("every task on the live worker only", () => onLiveOnly(400), 15_000);
    generated = 405;
    await master.scheduleNow("test");
    expect(await onLiveOnly(405)).toBe(true);
    expect(failures).toEqual([]);
  });
});

describe("a crashed worker's hold", () => {
  it("is recorded before its short-downtime tasks move, so they never run elsewhere while the rest look unheld", async () => {
    const space = testSpace("hold-first");
    const w1 = await FakeWorker.start(space.client, space.keys, "w1");
    await FakeWorker.start(space.client, space.keys, "w2");
    const generated = tasks(8).map((task, i) => (i % 2 === 0 ? { ...task, maxDowntime: "1s" } : task));
    const master = testMaster(space, () => generated, { handoff: "wait", reassignDelayMs: 60_000 });
    await master.start();
    await waitFor("all eight running", async () => (await statusOwners(space)).size === 8);
    const short = [...(await assignment(space.client, space.keys))]
      .filter(([taskId, worker]) => worker === "w1" && generated.find((t) => t.id === taskId)?.maxDowntime)
      .map(([taskId]) => taskId);
    expect(short.length).toBeGreaterThan(0);

    await w1.stop();
    await waitFor("w1's short tasks on w2", async () => {
      const owners = await assignment(space.client, space.keys);
      return short.every((taskId) => owners.get(taskId) === "w2");
    });
    const hold = (await space.client.get(space.keys.held("w1")).exec()).kvs[0];
    expect(hold).toBeDefined();
    for (const taskId of short) {
      const moved = (await space.client.get(space.keys.task("w2", taskId)).exec()).kvs[0];
      expect(Number(hold?.create_revision)).toBeLessThan(Number(moved?.mod_revision));
    }
  });
  it("records and ends more holds than one etcd transaction takes (130 workers crash in one schedule)", async () => {
    const space = testSpace("many-holds");
    const gone = await Promise.all(
      Array.from({ length: 130 }, (_, i) => FakeWorker.start(space.client, space.keys, `g${i}`)),
    );
    const generated = tasks(260).map((task, i) => (i % 2 === 0 ? { ...task, maxDowntime: "1s" } : task));
    const master = testMaster(space, () => generated, { handoff: "wait", reassignDelayMs: 4_000 });
    const failures: string[] = [];
    master.on("scheduleFailed", (failure) => failures.push(failure.error.message));
    await master.start();
    await waitFor("all assigned", async () => (await assignment(space.client, space.keys)).size === 260);
    // Paused while they crash: one schedule sees all 130 gone.
    await pause(space.client, space.root);
    await FakeWorker.start(space.client, space.keys, "live");
    const heldFor = new Set(
      [...(await assignment(space.client, space.keys))]
        .filter(([taskId]) => Number(taskId.slice(1)) % 2 === 1)
        .map(([, worker]) => worker),
    );
    await Promise.all(gone.map((worker) => worker.stop()));
    await resume(space.client, space.root);

    const held = async () => (await space.client.getAll().prefix(space.keys.heldPrefix).keys()).length;
    await waitFor("every hold recorded", async () => (await held()) === heldFor.size, 10_000);
    expect(heldFor.size).toBeGreaterThan(128);
    const onLive = async (count: number) =>
      [...(await assignment(space.client, space.keys)).values()].filter((w) => w === "live").length === count;
    await waitFor("every task on the live worker once the holds end", () => onLive(260), 20_000);
    await waitFor("every hold record deleted", async () => (await held()) === 0, 10_000);
    expect(failures).toEqual([]);
  });
});
