import { describe, expect, it } from "vitest";
import { LeaseSession, silentLogger } from "../../../src/node/index.js";
import { SessionStatus } from "../../../src/worker/session-status.js";
import { StatusWriter } from "../../../src/worker/status-writer.js";
import { refusedClaim, starting, writerOf } from "../../helpers/run-lock-writer.js";
import { testSpace } from "../../helpers/context.js";

describe("the run lock a start claim takes", () => {
  it("is taken with the status; a second assignment's claim on another worker is refused, naming the holder", async () => {
    const { client, keys } = testSpace("rlock");
    const w1 = await writerOf(client, keys, "w1");
    const w2 = await writerOf(client, keys, "w2");
    const [r1, r2] = await Promise.all([w1.assign("t"), w2.assign("t")]);

    const first = await w1.writer.claim("t", starting, r1);
    const second = await w2.writer.claim("t", starting, r2);

    expect(first.claimed).toBe(true);
    expect(second).toMatchObject({ claimed: false, heldBy: "w1" });
    const lock = (await client.get(keys.runLock("t")).exec()).kvs[0];
    expect(lock?.value.toString()).toBe("w1");
    expect(lock?.lease).toBe(w1.lease.id);
    expect(await client.get(keys.status("w2", "t")).string()).toBeNull();
    await Promise.all([w1.lease.close(), w2.lease.close()]);
  });

  it("goes with the holder's status deletion; the refused claim hears of it and then succeeds", async () => {
    const { client, keys } = testSpace("rlock-release");
    const { w1, w2, r2, refused } = await refusedClaim(client, keys);
    const released = refused.released(new AbortController().signal);

    await w1.writer.remove("t");
    await released;

    expect(await client.get(keys.runLock("t")).string()).toBeNull();
    expect((await w2.writer.claim("t", starting, r2)).claimed).toBe(true);
    expect(await client.get(keys.runLock("t")).string()).toBe("w2");
    await Promise.all([w1.lease.close(), w2.lease.close()]);
  });

  it("is released when the holder's lease ends", async () => {
    const { client, keys } = testSpace("rlock-lease");
    const { w1, w2, r2, refused } = await refusedClaim(client, keys);

    await w1.lease.close();
    await refused.released(new AbortController().signal);

    expect((await w2.writer.claim("t", starting, r2)).claimed).toBe(true);
    await w2.lease.close();
  });

  it("written without a lease (by a script) blocks nothing: no live worker stands behind it, the claim takes it over", async () => {
    const { client, keys } = testSpace("rlock-leaseless");
    const w1 = await writerOf(client, keys, "w1");
    const revision = await w1.assign("t");
    await client.put(keys.runLock("t")).value("evil");

    expect((await w1.writer.claim("t", starting, revision)).claimed).toBe(true);

    const lock = (await client.get(keys.runLock("t")).exec()).kvs[0];
    expect([lock?.value.toString(), lock?.lease]).toEqual(["w1", w1.lease.id]);
    await w1.lease.close();
  });

  it("lets its holder claim again (a retry, a restart), also from a new writer on the same lease", async () => {
    const { client, keys } = testSpace("rlock-again");
    const w1 = await writerOf(client, keys, "w1");
    const revision = await w1.assign("t");
    expect((await w1.writer.claim("t", starting, revision)).claimed).toBe(true);
    expect((await w1.writer.claim("t", { ...starting, attempt: 2 }, revision)).claimed).toBe(true);

    // A resumed session writes through a new writer, which does not know the lock is its own yet.
    const resumed = new StatusWriter(client, keys, "w1", w1.lease, silentLogger);
    expect((await resumed.claim("t", { ...starting, attempt: 3 }, revision)).claimed).toBe(true);

    const lock = (await client.get(keys.runLock("t")).exec()).kvs[0];
    expect(lock?.lease).toBe(w1.lease.id);
    await w1.lease.close();
  });

  it("is never deleted by a worker that does not hold it", async () => {
    const { client, keys } = testSpace("rlock-foreign");
    const w1 = await writerOf(client, keys, "w1");
    const w2 = await writerOf(client, keys, "w2");
    const [r1] = await Promise.all([w1.assign("t"), w2.assign("t")]);
    await w1.writer.claim("t", starting, r1);
    await w2.writer.put("t", { ...starting, state: "failed", error: "run lock held" });

    await w2.writer.remove("t");

    expect(await client.get(keys.status("w2", "t")).string()).toBeNull();
    expect(await client.get(keys.runLock("t")).string()).toBe("w1");
    await Promise.all([w1.lease.close(), w2.lease.close()]);
  });

  it("travels with claims in transactions etcd accepts, however many start at once", async () => {
    const { client, keys } = testSpace("rlock-many");
    const w1 = await writerOf(client, keys, "w1");
    const ids = Array.from({ length: 300 }, (_, i) => `t${i}`);
    const revisions = await Promise.all(ids.map((id) => w1.assign(id)));

    const results = await Promise.all(
      ids.map((id, i) => w1.writer.claim(id, starting, revisions[i] as number)),
    );

    expect(results.every((result) => result.claimed)).toBe(true);
    const locks = await client.getAll().prefix(keys.runLocksPrefix).keys();
    expect(locks.length).toBe(300);
    await Promise.all(ids.map((id) => w1.writer.remove(id)));
    expect(await client.getAll().prefix(keys.runLocksPrefix).keys()).toEqual([]);
    await w1.lease.close();
  });

  it("of a task that stopped while the lease was suspended goes when the session resumes", async () => {
    const { client, keys } = testSpace("rlock-resume");
    const lease = await LeaseSession.grant(client, { ttlMs: 10_000 });
    // A claim requires the worker's registration under its lease.
    await client.put(keys.worker("w1")).value("{}").lease(lease.id);
    const status = new SessionStatus({ client, keys, name: "w1", lease, logger: silentLogger });
    const revision = Number((await client.put(keys.task("w1", "t")).value("{}").exec()).header.revision);
    await status.claim("t", starting, revision);

    status.suspend();
    await status.resume(() => false);

    expect(await client.get(keys.status("w1", "t")).string()).toBeNull();
    expect(await client.get(keys.runLock("t")).string()).toBeNull();
    await lease.close();
  });
});
