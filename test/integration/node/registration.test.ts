import { describe, expect, it } from "vitest";
import { LeaseSession } from "../../../src/node/lease-session.js";
import { registerWhenAdmitted, registerWorker, type WorkerInfo } from "../../../src/node/registration.js";
import { testClient, testSpace, waitFor } from "../../helpers/context.js";

function info(name: string): WorkerInfo {
  return { name, host: "test", pid: 1, version: "0", startedAt: new Date().toISOString() };
}

describe("worker registration", () => {
  it("admits exactly the cap when twice as many workers race", async () => {
    const { keys } = testSpace("cap");
    const cap = 5;
    const racers = await Promise.all(
      Array.from({ length: cap * 2 }, async (_, i) => {
        const client = testClient();
        return { client, session: await LeaseSession.grant(client, { ttlMs: 5_000 }), name: `w${i}` };
      }),
    );
    const results = await Promise.allSettled(
      racers.map((r) =>
        registerWorker({ client: r.client, keys, session: r.session, info: info(r.name), maxWorkers: cap }),
      ),
    );
    const admitted = results.filter((r) => r.status === "fulfilled").length;
    const refused = results
      .filter((r) => r.status === "rejected")
      .map((r) => (r as PromiseRejectedResult).reason);
    expect(admitted).toBe(cap);
    expect(refused.every((e) => e.code === "ERR_WORKER_CAP")).toBe(true);
    expect(refused[0].message).toMatch(/5 of 5/);
    const registered = await racers[0].client.getAll().prefix(keys.workersPrefix).keys();
    expect(registered).toHaveLength(cap);
    await Promise.all(racers.map((r) => r.session.close()));
  });

  it("refuses a name held by a live process instead of taking it over", async () => {
    const { client, keys } = testSpace("dup");
    const first = await LeaseSession.grant(client, { ttlMs: 5_000 });
    const second = await LeaseSession.grant(client, { ttlMs: 5_000 });
    await registerWorker({ client, keys, session: first, info: info("same"), maxWorkers: 0 });
    await expect(
      registerWorker({ client, keys, session: second, info: info("same"), maxWorkers: 0 }),
    ).rejects.toMatchObject({
      code: "ERR_NAME_TAKEN",
      message: expect.stringContaining('"same"'),
    });
    const stored = await client.get(keys.worker("same")).exec();
    expect(stored.kvs[0].lease).toBe(first.id);
    await Promise.all([first.close(), second.close()]);
  });

  it("a refused worker gets in once a slot frees", async () => {
    const { client, keys } = testSpace("retry");
    const holder = await LeaseSession.grant(client, { ttlMs: 5_000 });
    const waiter = await LeaseSession.grant(client, { ttlMs: 5_000 });
    await registerWorker({ client, keys, session: holder, info: info("a"), maxWorkers: 1 });
    const reasons: string[] = [];
    const admitted = registerWhenAdmitted({
      client,
      keys,
      session: waiter,
      info: info("b"),
      maxWorkers: 1,
      onWaiting: (error) => reasons.push(error.code),
    });
    await waitFor("the waiter to be refused once", () => reasons.length > 0);
    await holder.close();
    await admitted;
    expect(reasons[0]).toBe("ERR_WORKER_CAP");
    expect(await client.get(keys.worker("b")).string()).toContain('"name":"b"');
    await waiter.close();
  });
});
