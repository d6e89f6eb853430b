/** Hostile data the leader acts on: a pause it must obey and schedule requests it must not trust. */
import { describe, expect, it } from "vitest";
import { requestSchedule } from "../../../src/operator/index.js";
import { testSpace, waitFor } from "../../helpers/context.js";
import { assignment, FakeWorker, tasks, testMaster } from "../master/fixtures.js";

const nested = (depth: number) => "[".repeat(depth) + "]".repeat(depth);

describe("hostile data the leader acts on", () => {
  it("a pause whose reason is nested 200,000 deep still pauses, and resume lets schedules run", async () => {
    const space = testSpace("hostile-pause");
    await space.client.put(space.keys.paused).value(`{"reason":${nested(200_000)},"at":"x"}`);
    await FakeWorker.start(space.client, space.keys, "w1");
    const master = testMaster(space, () => tasks(2));
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
    await FakeWorker.start(space.client, space.keys, "w1");
    const master = testMaster(space, () => generated, { maxRemovalPercent: 50 });
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
});
