import { Etcd3, Lease } from "etcd3";
import { describe, expect, it } from "vitest";
import { readLeader } from "../../../src/readiness/index.js";
import { FencedWriter, leaderFence } from "../../../src/master/index.js";
import { createEtcdClient } from "../../../src/node/index.js";
import { testClient, testSpace, waitFor } from "../../helpers/context.js";
import { TcpProxy } from "../../helpers/tcp-proxy.js";
import { assignment, FakeWorker, leaderLease, snapshot, tasks, testMaster } from "./fixtures.js";

describe("master leadership", () => {
  it("still schedules when an elected listener throws (a listener never changes control flow)", async () => {
    const space = testSpace("throwing-listener");
    await FakeWorker.start(space.client, space.keys, "w1");
    const master = testMaster(space, () => tasks(2), { name: "a" });
    master.on("elected", () => {
      throw new Error("listener bug");
    });
    let scheduled = 0;
    master.on("scheduled", () => scheduled++);
    await master.start();
    await waitFor("a schedule", () => scheduled > 0);
    expect(master.isLeader).toBe(true);
    expect(await assignment(space.client, space.keys)).toEqual(
      new Map([
        ["t0", "w1"],
        ["t1", "w1"],
      ]),
    );
  });

  it("elects exactly one of two masters and records it as the leader", async () => {
    const space = testSpace("lead");
    const a = testMaster(space, () => tasks(3), { name: "a" });
    const b = testMaster(space, () => tasks(3), { name: "b" });
    await a.start();
    await waitFor("a to lead", () => a.isLeader);
    await b.start();
    expect(b.isLeader).toBe(false);
    expect(await readLeader(space.client, space.keys)).toBe("a");
    await expect(b.scheduleNow("standby")).resolves.toBeUndefined();
  });

  it("hands over at once when the leader stops (it resigns)", async () => {
    const space = testSpace("resign");
    // A long TTL: a take-over within a fraction of it can only come from resigning.
    const a = testMaster(space, () => tasks(3), { name: "a", ttlMs: 10_000 });
    const b = testMaster(space, () => tasks(3), { name: "b", ttlMs: 10_000 });
    await a.start();
    await waitFor("a to lead", () => a.isLeader);
    await b.start();
    const stoppedAt = Date.now();
    await a.stop();
    await waitFor("b to lead", () => b.isLeader, 2_000, 5);
    expect(Date.now() - stoppedAt).toBeLessThan(1_000);
    expect(a.isLeader).toBe(false);
    expect(await readLeader(space.client, space.keys)).toBe("b");
  });

  it("takes over within TTL + 1 s when the leader dies without resigning (partitioned from etcd)", async () => {
    const space = testSpace("failover");
    const [host, port] = space.endpoints[0].split(":");
    const proxy = new TcpProxy({ host, port: Number(port) });
    await proxy.start();
    const doomedClient = createEtcdClient({ etcd: [proxy.hostPort], dialTimeout: 1_000 });
    try {
      const ttlMs = 2_000;
      const a = testMaster(space, () => tasks(3), { name: "a", ttlMs, client: doomedClient });
      const b = testMaster(space, () => tasks(3), { name: "b", ttlMs });
      const deposed: string[] = [];
      a.on("deposed", ({ reason }) => deposed.push(reason));
      await a.start();
      await waitFor("a to lead", () => a.isLeader);
      await b.start();

      proxy.partition();
      const killedAt = Date.now();
      await waitFor("b to lead", () => b.isLeader, ttlMs + 3_000, 10);
      const takeoverMs = Date.now() - killedAt;
      expect(takeoverMs).toBeLessThanOrEqual(ttlMs + 1_000);
      // The partitioned master noticed on its own (keep-alives unconfirmed) and stopped leading.
      expect(a.isLeader).toBe(false);
      expect(deposed.length).toBeGreaterThanOrEqual(1);
      expect(await readLeader(space.client, space.keys)).toBe("b");
    } finally {
      await proxy.stop();
      doomedClient.close();
    }
  });

  it("campaigns again after being deposed and leads once the other master is gone", async () => {
    const space = testSpace("again");
    const a = testMaster(space, () => tasks(1), { name: "a" });
    const b = testMaster(space, () => tasks(1), { name: "b" });
    await a.start();
    await waitFor("a to lead", () => a.isLeader);
    await b.start();
    const lease = await leaderLease(space.client, space.keys);
    await space.client.leaseClient.leaseRevoke({ ID: lease!.lease });
    await waitFor("b to lead", () => b.isLeader);
    await b.stop();
    await waitFor("a to lead again", () => a.isLeader);
  });
});

describe("fencing", () => {
  it("a master whose campaign lease is revoked from outside writes nothing", async () => {
    const space = testSpace("deposed");
    await FakeWorker.start(space.client, space.keys, "w1");
    let release!: () => void;
    let generatorCalls = 0;
    const a = testMaster(space, async () => {
      generatorCalls++;
      if (generatorCalls > 1) await new Promise<void>((resolve) => (release = resolve));
      return tasks(generatorCalls > 1 ? 10 : 4, { payload: { call: generatorCalls } });
    });
    const deposed: string[] = [];
    a.on("deposed", ({ reason }) => deposed.push(reason));
    await a.start();
    await waitFor("first schedule", async () => (await snapshot(space.client, space.keys))[space.keys.plan]);
    await waitFor(
      "every task reported running",
      async () => (await space.client.getAll().prefix(space.keys.statusPrefix).count()) === 4,
    );

    const pending = a.scheduleNow("test");
    await waitFor("generator to be called again", () => generatorCalls === 2);
    const before = await snapshot(space.client, space.keys);
    const lease = await leaderLease(space.client, space.keys);
    await space.client.leaseClient.leaseRevoke({ ID: lease!.lease });
    await waitFor("the master to notice", () => deposed.length > 0);
    release();

    await expect(pending).resolves.toBeUndefined();
    expect(await snapshot(space.client, space.keys)).toEqual(before);
  });

  it("a fenced write fails once the election key is gone, and nothing more is sent", async () => {
    const space = testSpace("fence");
    const client = testClient();
    const electionKey = space.keys.electionCandidate("1234");
    const created = await client.put(electionKey).value("m").exec();
    const deposedErrors: string[] = [];
    const writer = new FencedWriter(client, leaderFence(electionKey, created.header.revision), {
      onDeposed: (error) => deposedErrors.push(error.code),
    });
    await writer.apply([{ type: "put", key: space.keys.task("w", "before"), value: "{}" }]);

    await client.delete().key(electionKey).exec();
    const ops = Array.from({ length: 300 }, (_, i) => ({
      type: "put" as const,
      key: space.keys.task("w", `t${i}`),
      value: "{}",
    }));
    await expect(writer.apply(ops)).rejects.toMatchObject({ code: "ERR_DEPOSED" });
    await expect(
      writer.commit([{ type: "delete", key: space.keys.task("w", "before") }]),
    ).rejects.toMatchObject({
      code: "ERR_DEPOSED",
    });
    expect(deposedErrors).toEqual(["ERR_DEPOSED"]);
    expect(await client.getAll().prefix(space.keys.tasksPrefix).keys()).toEqual([
      space.keys.task("w", "before"),
    ]);
  });

  it("a fenced commit through a black-holed connection fails at its deadline instead of hanging", async () => {
    const space = testSpace("fence-deadline");
    const [host, port] = space.endpoints[0].split(":");
    const proxy = new TcpProxy({ host, port: Number(port) });
    await proxy.start();
    // A plain etcd3 client (no default deadlines): the writer must bound its own requests.
    const client = new Etcd3({ hosts: [`http://${proxy.hostPort}`] });
    try {
      const electionKey = space.keys.electionCandidate("5678");
      const created = await client.put(electionKey).value("m").exec();
      const writer = new FencedWriter(client, leaderFence(electionKey, created.header.revision), {
        requestTimeoutMs: 500,
      });
      proxy.partition();
      const began = performance.now();
      const outcome = await Promise.race([
        writer.commit([{ type: "put", key: space.keys.task("w", "t"), value: "{}" }]).then(
          () => "committed",
          () => "failed",
        ),
        new Promise((resolve) => setTimeout(() => resolve("still hanging"), 5_000)),
      ]);
      expect(outcome).toBe("failed");
      expect(performance.now() - began).toBeLessThan(3_000);
    } finally {
      client.close();
      await proxy.stop();
    }
  });

  it("a re-created election key (same name, new revision) does not satisfy an old fence", async () => {
    const space = testSpace("fence2");
    const client = testClient();
    const electionKey = space.keys.electionCandidate("99");
    const first = await client.put(electionKey).value("m").exec();
    await client.delete().key(electionKey).exec();
    await client.put(electionKey).value("m").exec();
    const writer = new FencedWriter(client, leaderFence(electionKey, first.header.revision));
    await expect(writer.commit([{ type: "put", key: space.keys.plan, value: "{}" }])).rejects.toMatchObject({
      code: "ERR_DEPOSED",
    });
    expect(await client.get(space.keys.plan).string()).toBeNull();
  });
});

describe("master start-up", () => {
  it("campaigns again when its first lease is revoked before it became a candidate (start-up does not fail)", async () => {
    const space = testSpace("first-lease");
    const admin = testClient(space.endpoints);
    const grant = Lease.prototype.grant;
    let revoked: string | undefined;
    // etcd revokes the first lease the master is granted, as when the process stalls past its TTL at start-up.
    Lease.prototype.grant = async function (this: Lease) {
      const id = await grant.call(this);
      if (revoked === undefined) {
        revoked = id;
        await admin.leaseClient.leaseRevoke({ ID: id });
      }
      return id;
    };
    try {
      const master = testMaster(space, () => tasks(1), { name: "a" });
      await master.start();
      await waitFor("a to lead", () => master.isLeader);
    } finally {
      Lease.prototype.grant = grant;
      admin.close();
    }
    expect(revoked).toBeDefined();
    expect(await readLeader(space.client, space.keys)).toBe("a");
  });
});
