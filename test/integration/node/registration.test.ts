import type { Etcd3 } from "etcd3";
import { describe, expect, it, vi } from "vitest";
import { LeaseSession } from "../../../src/node/lease-session.js";
import { registerWhenAdmitted, registerWorker, type WorkerInfo } from "../../../src/node/registration.js";
import { testClient, testSpace, waitFor } from "../../helpers/context.js";

function info(name: string): WorkerInfo {
  return { name, host: "test", pid: 1, version: "0", startedAt: new Date().toISOString() };
}

/** `count` racers with their own leases over a few shared clients, each client's transactions counted. */
async function racers(count: number, clients: number) {
  const pool = Array.from({ length: clients }, () => testClient());
  const txns = pool.map((client) => vi.spyOn(client.kv, "txn"));
  const all = await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const client = pool[i % clients] as Etcd3;
      return { client, session: await LeaseSession.grant(client, { ttlMs: 20_000 }), name: `w${i}` };
    }),
  );
  return { all, txnCalls: () => txns.reduce((sum, spy) => sum + spy.mock.calls.length, 0) };
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

  it("500 racers with a cap of 250: exactly 250 get in, at a cost linear in the racers", async () => {
    const { keys } = testSpace("cap500");
    const cap = 250;
    const { all, txnCalls } = await racers(500, 10);
    const results = await Promise.allSettled(
      all.map((r) =>
        registerWorker({ client: r.client, keys, session: r.session, info: info(r.name), maxWorkers: cap }),
      ),
    );
    const refused = results.flatMap((r) => (r.status === "rejected" ? [r.reason] : []));
    expect(results.length - refused.length).toBe(cap);
    expect(refused.every((e) => e.code === "ERR_WORKER_CAP")).toBe(true);
    expect(refused[0].message).toMatch(/250 of 250/);
    expect(await all[0].client.getAll().prefix(keys.workersPrefix).count()).toBe(cap);
    // Each slot holder is a registered worker, and no slot lies beyond the cap.
    const slots = await all[0].client.getAll().prefix(keys.workerSlotsPrefix).strings();
    const registered = new Set(await all[0].client.getAll().prefix(keys.workersPrefix).keys());
    expect(Object.keys(slots).every((key) => (keys.parseWorkerSlot(key) ?? cap) < cap)).toBe(true);
    expect(Object.values(slots).every((name) => registered.has(keys.worker(name)))).toBe(true);
    // Comparing the whole registration range cost O(racers²) (~125,000 here); slots stay linear.
    expect(txnCalls()).toBeLessThan(500 * 6);
    await Promise.all(all.map((r) => r.session.close()));
  });

  it("500 uncapped racers all get in with one transaction each", async () => {
    const { keys } = testSpace("open500");
    const { all, txnCalls } = await racers(500, 10);
    await Promise.all(
      all.map((r) =>
        registerWorker({ client: r.client, keys, session: r.session, info: info(r.name), maxWorkers: 0 }),
      ),
    );
    expect(await all[0].client.getAll().prefix(keys.workersPrefix).count()).toBe(500);
    expect(txnCalls()).toBe(500);
    expect(await all[0].client.getAll().prefix(keys.workerSlotsPrefix).count()).toBe(0);
    await Promise.all(all.map((r) => r.session.close()));
  });

  it("a slot frees with its holder's lease", async () => {
    const { client, keys } = testSpace("slotfree");
    const holder = await LeaseSession.grant(client, { ttlMs: 5_000 });
    await registerWorker({ client, keys, session: holder, info: info("a"), maxWorkers: 1 });
    expect(await client.get(keys.workerSlot(0)).string()).toBe("a");
    await holder.close();
    expect(await client.getAll().prefix(keys.workerSlotsPrefix).count()).toBe(0);
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
