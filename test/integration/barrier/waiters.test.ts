import { describe, expect, it } from "vitest";
import { BarrierWaiters } from "../../../src/barrier/waiters.js";
import { doubleBarrierKeys, LeaseSession, silentLogger } from "../../../src/node/index.js";
import { testSpace } from "../../helpers/context.js";

/** A barrier's keys with `strangers` keys under its waiters' prefix that are no participant (no lease), each `size` bytes long. */
async function withStrangers(label: string, strangers: number, size = 0) {
  const { client, keys } = testSpace(label);
  const barrier = doubleBarrierKeys(keys.barrierPrefix);
  for (let i = 0; i < strangers; i++) {
    await client
      .put(`${barrier.waitersPrefix}junk-${i}-${"x".repeat(size)}`)
      .value("")
      .exec();
  }
  const waiterKeys = async () => client.getAll().prefix(barrier.waitersPrefix).keys();
  return { client, barrier, waiterKeys };
}

describe("BarrierWaiters", () => {
  it("reads the leases sooner while the count does not fall, and removes what is no participant", async () => {
    const { client, barrier, waiterKeys } = await withStrangers("waiters-stall", 40);
    const session = await LeaseSession.grant(client, { ttlMs: 5_000 });
    await client.put(barrier.waiter("p")).value("").lease(session.id).exec();
    // A draw of 0.3: read only when the chance (16 / 41, doubled per check without a fall) reaches it.
    const waiters = new BarrierWaiters(client, barrier, silentLogger, () => 0.3);
    const counts = { stalled: 0 };
    expect(await waiters.anyLeft(counts)).toBe(true); // 16 / 41 = 0.39 > 0.3: read, strangers removed
    expect(await waiters.anyLeft(counts)).toBe(true);
    expect(await waiterKeys()).toEqual([barrier.waiter("p")]);

    const again = await withStrangers("waiters-stall2", 100);
    await again.client.put(again.barrier.waiter("p")).value("").lease(session.id).exec();
    const later = new BarrierWaiters(again.client, again.barrier, silentLogger, () => 0.3);
    const counted = { stalled: 0 };
    await later.anyLeft(counted); // 16 / 101: no read
    expect((await again.waiterKeys()).length).toBe(101);
    await later.anyLeft(counted); // stalled once: 32 / 101 = 0.32 > 0.3: read
    expect(await again.waiterKeys()).toEqual([again.barrier.waiter("p")]);
    await session.close();
  });

  it("removes long keys that are no participant in transactions etcd accepts", async () => {
    // 24 keys of 40 KB: in one transaction of deletions (each naming its key twice) over etcd's 1.5 MiB.
    const { client, barrier, waiterKeys } = await withStrangers("waiters-long", 24, 40_000);
    const waiters = new BarrierWaiters(client, barrier, silentLogger);
    expect((await waiters.read()).names).toEqual([]);
    expect(await waiterKeys()).toEqual([]);
    await client.put(barrier.ready).value("{}").exec();
    await waiters.clearReady();
    expect(await client.get(barrier.ready).string()).toBeNull();
  });
});
