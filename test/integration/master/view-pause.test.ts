import { describe, expect, it } from "vitest";
import { FencedWriter, leaderFence } from "../../../src/master/fencing.js";
import { leaderRead, MasterView } from "../../../src/master/view/index.js";
import { silentLogger } from "../../../src/node/index.js";
import { testSpace } from "../../helpers/context.js";

describe("the leader's read through its view while schedules are paused", () => {
  it("writes no freshness mark while paused (it reads etcd), and marks again once resumed", async () => {
    const { client, keys } = testSpace("view-pause");
    await client.put(keys.worker("w1")).value("{}");
    await client.put(keys.task("w1", "t1")).value("{}");
    const view = new MasterView(client, keys);
    await view.start();
    const campaign = keys.electionCandidate("1");
    const created = (await client.put(campaign).value("m1").exec()).header.revision;
    const writer = new FencedWriter(client, leaderFence(campaign, created), { pausedKey: keys.paused });
    const signal = new AbortController().signal;
    const read = leaderRead(view, { client, keys, name: "m1", writer, logger: silentLogger, signal });
    try {
      await client
        .put(keys.paused)
        .value(JSON.stringify({ reason: "test", by: "t", at: new Date().toISOString() }));
      const paused = await read();
      expect(paused.source).toBe("etcd");
      expect(paused.current.get("w1")?.has("t1")).toBe(true);
      expect(await client.get(keys.viewMark).string()).toBeNull();
      expect(await client.get(keys.controlsMark).string()).toBeNull();

      await client.delete().key(keys.paused);
      const resumed = await read();
      expect(resumed.source).toBe("view");
      expect(await client.get(keys.viewMark).string()).toBe("m1");
      expect(await client.get(keys.controlsMark).string()).toBe("m1");
    } finally {
      await view.close();
    }
  });
});
