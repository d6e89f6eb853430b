import { describe, expect, it } from "vitest";
import { PrefixWatcher } from "../../../src/watcher/index.js";
import { testSpace, waitFor } from "../../helpers/context.js";
import { tasks, testMaster } from "../master/fixtures.js";
import { putTask, RecordingHandler, storedStatuses, testWorker } from "./fixtures.js";

describe("Worker.drain()", () => {
  it("while a master leads: it schedules at once and hands each task off from the draining worker, which then leaves", async () => {
    const space = testSpace("wdrain");
    const { client, keys, root } = space;
    // The default debounce: a worker that merely left would leave its tasks running nowhere this long.
    const master = testMaster(space, () => tasks(6), { rebalanceWaitMs: 5_000, maxMoving: 6 });
    const handedOff: string[] = [];
    master.on("handoffWait", (event) => handedOff.push(`${event.task} ${event.from}→${event.to}`));
    const reasons: string[][] = [];
    let added = 0;
    master.on("scheduled", (result) => {
      reasons.push(result.reasons);
      added += result.added;
    });
    await master.start();
    const leavingHandler = new RecordingHandler();
    const stayingHandler = new RecordingHandler();
    const leaving = testWorker({ root, name: "w1", handler: leavingHandler, stopTimeoutMs: 10_000 });
    const staying = testWorker({ root, name: "w2", handler: stayingHandler });
    await Promise.all([leaving.start(), staying.start()]);
    await waitFor(
      "three tasks on each worker",
      () => leavingHandler.running.size === 3 && stayingHandler.running.size === 3,
    );
    // Tasks start while the schedule that wrote them is still finishing: wait for its report too.
    await waitFor("the schedule that placed them reported", () => added === 6);
    const moving = [...leavingHandler.running].sort();
    const schedulesBefore = reasons.length;
    const marks: string[] = [];
    const watcher = new PrefixWatcher(client, keys.drainingPrefix);
    watcher.on("change", (change) => marks.push(`${change.type} ${keys.parseDraining(change.key)}`));
    await watcher.start();

    await leaving.drain();

    // Handed off: each was written to w2 once w1's status for it was gone, w1 still registered.
    await waitFor("all six on w2", () => stayingHandler.running.size === 6);
    expect(handedOff.sort()).toEqual(moving.map((id) => `${id} w1→w2`));
    expect(reasons[schedulesBefore]).toEqual(["draining"]);
    expect(leavingHandler.running.size).toBe(0);
    await waitFor("the mark gone with the lease", () => marks.length === 2);
    expect(marks).toEqual(["put w1", "delete w1"]);
    expect(await client.get(keys.worker("w1")).string()).toBeNull();
    // The mark's deletion is no reason to schedule at once: w1's registration going is (debounced).
    await waitFor("the schedule after w1 left", () => reasons.length > schedulesBefore + 1, 15_000);
    expect(reasons.slice(schedulesBefore + 1).flat()).not.toContain("draining");
    await watcher.close();
  });

  it("with no leader: waits at most a TTL for one, then leaves as stop() does", async () => {
    const { client, keys, root } = testSpace("wdrain-alone");
    const handler = new RecordingHandler();
    await putTask(client, keys, "w1", { id: "a" });
    await putTask(client, keys, "w1", { id: "b" });
    const worker = testWorker({ root, handler, ttlMs: 1_000, stopTimeoutMs: 20_000 });
    await worker.start();
    await waitFor("tasks running", () => handler.running.size === 2);
    const draining = worker.drain();
    await waitFor("the draining mark", async () => (await client.get(keys.draining("w1")).string()) !== null);

    await Promise.all([draining, worker.stop()]);

    expect(handler.running.size).toBe(0);
    expect(await client.get(keys.worker("w1")).string()).toBeNull();
    expect(await client.get(keys.draining("w1")).string()).toBeNull();
    expect((await storedStatuses(client, keys, "w1")).size).toBe(0);
    expect(worker.status).toBe("dead");
  }, 10_000);
});
