import { describe, expect, it } from "vitest";
import { Cluster, unitTasks } from "../../helpers/cluster.js";
import { uniqueRoot, waitFor } from "../../helpers/context.js";

/** Every key under a root with its value and revisions (a write of any kind changes one of them). */
async function everyKey(cluster: Cluster): Promise<Array<[string, string, string, string]>> {
  const response = await cluster.client.getAll().prefix(cluster.keys.prefix).exec();
  return response.kvs
    .map((kv): [string, string, string, string] => [
      kv.key.toString(),
      kv.value.toString(),
      String(kv.create_revision),
      String(kv.mod_revision),
    ])
    .filter(([key]) => !key.endsWith(".history-mark"));
}

describe("two roots on one etcd", () => {
  it("a second root is untouched by everything the first does, even with the same worker names and a root name that extends the first's", async () => {
    const root = uniqueRoot("iso");
    // `<root>-b` shares `/<root>` as a string prefix: a key range built without the trailing slash would reach it.
    // Its workers register before its master: one schedule, whose generator knew them both, and none after.
    const bystander = await Cluster.create({ root: `${root}-b`, interval: "1h" });
    bystander.startWorker("w1");
    bystander.startWorker("w2");
    await waitFor("the bystander's workers to register", async () => {
      const registered = await bystander.client.getAll().prefix(bystander.keys.workersPrefix).keys();
      return registered.length === 2;
    });
    await bystander.startMaster("m1");
    await bystander.waitConverged();
    await bystander.history.caughtUp(bystander.client);
    const keysBefore = await everyKey(bystander);
    const eventsBefore = bystander.events().length;
    const historyBefore = bystander.history.events.length;

    const busy = await Cluster.start({ root, masters: 2, workers: 3, ttl: "2s", rebalanceWait: "200ms" });
    await busy.kill("w1");
    expect((await busy.terminate("w2")).code).toBe(0);
    busy.setTasks(unitTasks(12));
    expect((await busy.schedule()).status).toBe(200);
    await busy.waitConverged();
    const leader = await busy.leader();
    expect((await busy.terminate(leader ?? "m1")).code).toBe(0);
    busy.startWorker("w2");
    await busy.waitConverged();
    expect(await busy.invariantProblems()).toEqual([]);

    await bystander.history.caughtUp(bystander.client);
    expect(await everyKey(bystander)).toEqual(keysBefore);
    expect(bystander.events().slice(eventsBefore)).toEqual([]);
    expect(
      bystander.history.events.slice(historyBefore).filter((event) => !event.key.endsWith(".history-mark")),
    ).toEqual([]);
    expect(await bystander.invariantProblems()).toEqual([]);
  });
});
