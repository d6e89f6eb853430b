import { describe, expect, it, vi } from "vitest";
import { isBarrierLeft, markBarrierLeft } from "../../../src/barrier/index.js";
import {
  clusterReadiness,
  readClusterView,
  readLeader,
  workerReadiness,
} from "../../../src/readiness/index.js";
import { EschedulerError } from "../../../src/errors.js";
import { LeaseSession } from "../../../src/node/index.js";
import { testSpace } from "../../helpers/context.js";

const since = "2026-01-01T00:00:00.000Z";

describe("readClusterView", () => {
  it("reads leader, marker, plan, workers, assignments and statuses at one revision", async () => {
    const { client, keys } = testSpace("view");
    const campaign = await LeaseSession.grant(client, { ttlMs: 2_000 });
    const later = await LeaseSession.grant(client, { ttlMs: 2_000 });
    // Registrations and statuses live under their worker's lease (one without is not trusted).
    const workers = await LeaseSession.grant(client, { ttlMs: 5_000 });
    try {
      await campaign.lease.put(keys.electionCandidate(campaign.id)).value("m1");
      await later.lease.put(keys.electionCandidate(later.id)).value("m2");
      await markBarrierLeft(client, keys);
      await client
        .put(keys.plan)
        .value(JSON.stringify({ epoch: 1, leader: "m1", at: since, workers: ["w1"], tasks: 2, moved: 0 }));
      for (const name of ["w1", "w2"]) {
        await workers.lease
          .put(keys.worker(name))
          .value(JSON.stringify({ name, host: "h", pid: 1, version: "0", startedAt: since }));
      }
      await client.put(keys.task("w1", "t1")).value(JSON.stringify({ id: "t1", payload: "x".repeat(1_000) }));
      await client.put(keys.task("w1", "t2")).value(JSON.stringify({ id: "t2" }));
      await workers.lease
        .put(keys.status("w1", "t1"))
        .value(JSON.stringify({ state: "running", attempt: 1, since }));
      const lastWrite = await workers.lease
        .put(keys.status("w1", "t2"))
        .value(JSON.stringify({ state: "failed", attempt: 3, since, error: "boom" }));

      const view = await readClusterView(client, keys);

      expect(view.leader).toBe("m1");
      expect(view.barrierLeft).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
      expect(view.plan?.workers).toEqual(["w1"]);
      expect([...view.workers.keys()].sort()).toEqual(["w1", "w2"]);
      expect(view.assignments).toEqual(new Map([["w1", ["t1", "t2"]]]));
      expect(view.statuses.get("w1")?.get("t2")).toMatchObject({ state: "failed", error: "boom" });
      expect(view.revision).toBeGreaterThanOrEqual(Number(lastWrite.header.revision));
      expect(workerReadiness("w1", view).reasons).toEqual(['task "t2" on "w1" is failed: boom']);
      expect(clusterReadiness(view).reasons).toEqual([
        'worker "w2" is not in the last plan (epoch 1)',
        'task "t2" on "w1" is failed: boom',
      ]);

      // The oldest campaign leads; when it goes, the next one does.
      await campaign.close();
      expect(await readLeader(client, keys)).toBe("m2");
    } finally {
      await campaign.close();
      await later.close();
      await workers.close();
    }
  });

  it("scoped to one worker, reads only that worker's registration, tasks and statuses", async () => {
    const { client, keys } = testSpace("view-scoped");
    const session = await LeaseSession.grant(client, { ttlMs: 5_000 });
    for (const name of ["w1", "w2"]) {
      await session.lease
        .put(keys.worker(name))
        .value(JSON.stringify({ name, host: "h", pid: 1, version: "0", startedAt: since }));
      await client.put(keys.task(name, `${name}-t`)).value("{}");
      await session.lease
        .put(keys.status(name, `${name}-t`))
        .value(JSON.stringify({ state: "running", attempt: 1, since }));
    }

    const view = await readClusterView(client, keys, { worker: "w2" });

    expect([...view.workers.keys()]).toEqual(["w2"]);
    expect(Object.fromEntries(view.assignments)).toEqual({ w2: ["w2-t"] });
    expect([...view.statuses.keys()]).toEqual(["w2"]);
    expect(workerReadiness("w2", view).reasons).not.toContainEqual(expect.stringContaining("w2-t"));
    await session.close();
  });

  it("reads thousands of keys in one round trip", async () => {
    const { client, keys } = testSpace("view-big");
    // Statuses under a lease, as workers write them (so each is read and validated).
    const { ID: lease } = await client.leaseClient.leaseGrant({ TTL: 60 });
    const writes: Promise<unknown>[] = [];
    for (let i = 0; i < 3_000; i++) {
      const worker = `w${i % 30}`;
      writes.push(
        client
          .put(keys.task(worker, `t${i}`))
          .value(JSON.stringify({ id: `t${i}`, payload: { i } }))
          .exec(),
      );
      writes.push(
        client.kv.put({
          key: Buffer.from(keys.status(worker, `t${i}`)),
          value: Buffer.from(JSON.stringify({ state: "running", attempt: 1, since })),
          lease,
        }),
      );
      if (writes.length >= 400) await Promise.all(writes.splice(0));
    }
    await Promise.all(writes);
    // Count round trips, not milliseconds: a whole-cluster read is one transaction however many keys
    // (pages of 5,000), so a slow machine cannot fail this and a per-key read cannot pass it.
    const txn = vi.spyOn(client.kv, "txn");
    const range = vi.spyOn(client.kv, "range");
    const view = await readClusterView(client, keys);
    expect(txn).toHaveBeenCalledTimes(1);
    expect(range).not.toHaveBeenCalled();
    txn.mockRestore();
    range.mockRestore();
    expect([...view.assignments.values()].reduce((sum, ids) => sum + ids.length, 0)).toBe(3_000);
    expect([...view.statuses.values()].reduce((sum, byTask) => sum + byTask.size, 0)).toBe(3_000);
  });
});

describe("the barrier-left marker", () => {
  it("is set exactly once when two leaders race", async () => {
    const { client, keys } = testSpace("marker");
    expect(await isBarrierLeft(client, keys)).toBe(false);
    const results = await Promise.all([markBarrierLeft(client, keys), markBarrierLeft(client, keys)]);
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await isBarrierLeft(client, keys)).toBe(true);
    const value = await client.get(keys.barrierLeft).string();
    expect(new Date(value ?? "").toISOString()).toBe(value);
    expect(await markBarrierLeft(client, keys)).toBe(false);
    expect(await client.get(keys.barrierLeft).string()).toBe(value);
  });

  it("is not set by a deposed leader (its fence fails)", async () => {
    const { client, keys } = testSpace("marker-fence");
    const fence = [
      {
        key: Buffer.from(keys.electionCandidate("1234")),
        target: "Create" as const,
        result: "Equal" as const,
        create_revision: "7",
      },
    ];
    const attempt = markBarrierLeft(client, keys, fence);
    await expect(attempt).rejects.toBeInstanceOf(EschedulerError);
    await expect(attempt).rejects.toMatchObject({ code: "ERR_DEPOSED" });
    expect(await isBarrierLeft(client, keys)).toBe(false);
  });
});
