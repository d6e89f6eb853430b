import { describe, expect, it } from "vitest";
import { createEtcdClient } from "../../../src/node/index.js";
import { etcdEndpoints, testSpace, waitFor } from "../../helpers/context.js";
import { TcpProxy } from "../../helpers/tcp-proxy.js";
import { tasks, testMaster } from "../master/fixtures.js";
import { RecordingHandler, testWorker } from "./fixtures.js";

/** Task keys with their mod revisions, and the plan: what the master wrote. */
async function masterWrites(client: ReturnType<typeof createEtcdClient>, prefix: string, plan: string) {
  const stored = await client.getAll().prefix(prefix).exec();
  return {
    tasks: stored.kvs.map((kv) => `${kv.key.toString()}@${kv.mod_revision}`).sort(),
    plan: await client.get(plan).string(),
  };
}

describe("keep-alive resumption", () => {
  it("keep-alives delayed past the fence point but not past the TTL: tasks stop, then restart on the same worker; the master moves nothing, nothing runs twice", async () => {
    const space = testSpace("resume");
    const { client, keys, root } = space;
    const [host, port] = etcdEndpoints()[0].split(":");
    const proxy = new TcpProxy({ host, port: Number(port) });
    await proxy.start();
    const proxied = createEtcdClient({ etcd: [proxy.hostPort] });
    try {
      const master = testMaster(space, () => tasks(8));
      const slow = new RecordingHandler();
      const steady = new RecordingHandler();
      const w1 = testWorker({ root, name: "w1", client: proxied, handler: slow, ttlMs: 4_000 });
      const w2 = testWorker({ root, name: "w2", handler: steady, ttlMs: 4_000 });
      const events: string[] = [];
      for (const event of ["suspended", "resumed", "lost"] as const) w1.on(event, () => events.push(event));
      await Promise.all([w1.start(), w2.start()]);
      await master.start();
      await waitFor("all 8 running, shared", () => slow.running.size === 4 && steady.running.size === 4);
      const mine = [...slow.running].sort();
      const before = await masterWrites(client, keys.tasksPrefix, keys.plan);
      const registration = (await client.get(keys.worker("w1")).exec()).kvs[0]?.lease;

      // Everything w1 sends or receives now waits; released the moment w1 fences, well before the TTL.
      proxy.hold();
      await waitFor("w1 suspended", () => events.includes("suspended"), 10_000);
      expect(w1.status).toBe("lost");
      await waitFor("w1's tasks stopped", () => slow.running.size === 0);
      proxy.release();

      await waitFor("w1 resumed", () => events.includes("resumed"), 10_000).catch((e) => {
        throw new Error(`${String(e)} events=${events.join(",")}`);
      });
      await waitFor("w1's tasks running again on w1", () => slow.running.size === 4, 10_000);
      await waitFor("their statuses running again", async () => {
        const stored = await client.getAll().prefix(keys.workerStatusPrefix("w1")).strings();
        return Object.values(stored).filter((value) => JSON.parse(value).state === "running").length === 4;
      });

      expect(events).toEqual(["suspended", "resumed"]);
      expect([...slow.running].sort()).toEqual(mine);
      for (const id of mine)
        expect(slow.callsFor(id)).toEqual(
          ["start null", "stop null", "start null"].map((c) => c.replace(" ", ` ${id} `)),
        );
      // The master moved nothing: the same task keys at the same revisions, the same plan.
      expect(await masterWrites(client, keys.tasksPrefix, keys.plan)).toEqual(before);
      expect((await client.get(keys.worker("w1")).exec()).kvs[0]?.lease).toBe(registration);
      // Nothing ran twice: w2 never started one of w1's tasks.
      expect(steady.calls.filter((call) => mine.includes(call.split(" ")[1] ?? ""))).toEqual([]);
      expect(w1.status).toBe("left_barrier");
    } finally {
      proxy.release();
      proxied.close();
      await proxy.stop();
    }
  }, 30_000);
});
