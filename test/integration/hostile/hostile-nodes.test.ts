/** Hostile data a node acts on: a pause the leader must obey, requests it must not trust, a barrier waiter without a lease. */
import { describe, expect, it } from "vitest";
import { DoubleBarrier } from "../../../src/barrier/index.js";
import { LeaseSession } from "../../../src/node/index.js";
import { requestSchedule } from "../../../src/operator/index.js";
import { testSpace, waitFor } from "../../helpers/context.js";
import { assignment, FakeWorker, tasks, testMaster } from "../master/fixtures.js";

/** Long enough that a loaded machine does not end a lease (and a leadership) mid-test. */
const LEASE_MS = 10_000;

const nested = (depth: number) => "[".repeat(depth) + "]".repeat(depth);

describe("hostile data a node acts on", () => {
  it("a pause whose reason is nested 200,000 deep still pauses, and resume lets schedules run", async () => {
    const space = testSpace("hostile-pause");
    await space.client.put(space.keys.paused).value(`{"reason":${nested(200_000)},"at":"x"}`);
    await FakeWorker.start(space.client, space.keys, "w1", { ttlMs: LEASE_MS });
    const master = testMaster(space, () => tasks(2), { ttlMs: LEASE_MS });
    await master.start();
    await waitFor("the leadership", () => master.isLeader);
    await expect(master.scheduleNow("test")).rejects.toMatchObject({ code: "ERR_PAUSED" });
    expect((await assignment(space.client, space.keys)).size).toBe(0);

    await space.client.delete().key(space.keys.paused);
    await waitFor("both tasks assigned", async () => (await assignment(space.client, space.keys)).size === 2);
  });

  it('a request with "allowRemoval":"yes" is not answered and lets no schedule past the removal guard', async () => {
    const space = testSpace("hostile-request");
    let generated = tasks(4);
    await FakeWorker.start(space.client, space.keys, "w1", { ttlMs: LEASE_MS });
    const master = testMaster(space, () => generated, { maxRemovalPercent: 50, ttlMs: LEASE_MS });
    await master.start();
    await waitFor("four tasks on w1", async () => (await assignment(space.client, space.keys)).size === 4);
    generated = [];

    const bad = space.keys.request("forged");
    await space.client.put(bad).value('{"allowRemoval":"yes","at":"x"}');
    // Requests are handed over in order: once this one is answered, the forged one was seen.
    const outcome = await requestSchedule(space.client, space.root, { timeoutMs: 10_000 });
    expect(outcome).toMatchObject({ state: "refused" });
    expect((await assignment(space.client, space.keys)).size).toBe(4);
    expect(JSON.parse((await space.client.get(bad).string()) ?? "{}")).not.toHaveProperty("outcome");
  });

  it("a barrier waiter without a lease is not counted and does not hold the others in the barrier", async () => {
    const { client, keys } = testSpace("hostile-barrier");
    await client.put(`${keys.barrierPrefix}waiters/ghost`).value("");
    const session = await LeaseSession.grant(client, { ttlMs: 5_000 });
    const barrier = new DoubleBarrier({ client, prefix: keys.barrierPrefix, name: "w1", count: 1, session });
    await barrier.enter({ timeoutMs: 5_000 });
    await barrier.leave({ timeoutMs: 5_000 });
    await session.close();
  });
});
