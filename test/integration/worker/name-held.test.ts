import { describe, expect, it } from "vitest";
import { LeaseSession } from "../../../src/node/index.js";
import { testSpace } from "../../helpers/context.js";
import { testWorker } from "./fixtures.js";

const registration = (name: string) =>
  JSON.stringify({ name, host: "h", pid: 1, version: "0", startedAt: new Date().toISOString() });

/**
 * A restarted worker finds its name still registered by its crashed predecessor until etcd expires the
 * old lease, which may take longer than the new worker's TTL (a longer old TTL; no etcd leader, or a
 * leader change that gives every lease a full TTL again): it waits for the name instead of giving up.
 */
describe("a worker whose name is still registered at start", () => {
  it("waits for a crashed predecessor's registration to expire, however long its lease lasts", async () => {
    const { client, keys, root } = testSpace("name-held");
    const ttlSeconds = 6;
    // The predecessor's lease, never renewed again: it expires 6 s from now, long after the new
    // worker's TTL + 1 s (the old code gave up then, with ERR_NAME_TAKEN).
    const orphan = await client.lease(ttlSeconds, { autoKeepAlive: false }).grant();
    await client.put(keys.worker("w1")).value(registration("w1")).lease(orphan);
    const started = Date.now();

    await testWorker({ root, name: "w1", ttlMs: 1_000 }).start();

    expect(Date.now() - started).toBeGreaterThan((ttlSeconds - 1) * 1_000);
    const stored = await client.get(keys.worker("w1")).exec();
    expect(stored.kvs[0].lease).not.toBe(orphan);
  }, 30_000);

  it("gives up with ERR_NAME_TAKEN when the holder is alive (its lease outlives its TTL)", async () => {
    const { client, keys, root } = testSpace("name-live");
    const holder = await LeaseSession.grant(client, { ttlMs: 1_000 });
    await client.put(keys.worker("w1")).value(registration("w1")).lease(holder.id);
    const started = Date.now();

    await expect(testWorker({ root, name: "w1", ttlMs: 1_000 }).start()).rejects.toMatchObject({
      code: "ERR_NAME_TAKEN",
    });

    expect(Date.now() - started).toBeLessThan(15_000);
    await holder.close();
  }, 30_000);
});
