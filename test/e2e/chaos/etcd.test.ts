import type { Etcd3 } from "etcd3";
import { ConnectionPool } from "etcd3/lib/connection-pool.js";
import { describe, expect, it } from "vitest";
import { createEtcdClient, keyLayout, type Task } from "../../../src/node/index.js";
import { Worker } from "../../../src/worker/index.js";
import { Cluster, unitTasks } from "../../helpers/cluster.js";
import { uniqueRoot, waitFor } from "../../helpers/context.js";
import { type EtcdMember, startEtcd, startEtcdCluster } from "../../helpers/etcd.js";
import { currentRevision } from "../../invariants/index.js";
import { startPeerProxiedEtcdCluster, TcpProxy } from "../../helpers/tcp-proxy.js";

const timings = { ttl: "2s", rebalanceWait: "200ms" };

/** The member that the raft leader is, as each running member's maintenance status reports it. */
async function raftLeader(members: EtcdMember[]): Promise<EtcdMember> {
  return waitFor("an etcd raft leader", async () => {
    for (const member of members.filter((m) => m.running)) {
      const client = createEtcdClient({ etcd: [member.hostPort], dialTimeout: 1_000 });
      try {
        const status = await client.maintenance.status();
        if (status.leader !== "0" && status.header.member_id === status.leader) return member;
      } catch {
        // Not answering: not the leader.
      } finally {
        client.close();
      }
    }
    return undefined;
  });
}

/** Asks the leading master to schedule until one succeeds (masters may still be reconnecting). */
function scheduled(cluster: Cluster): Promise<boolean> {
  return waitFor("a successful schedule", async () => (await cluster.schedule()).status === 200, 20_000, 200);
}

/** Workers that stopped their tasks because their lease could not be confirmed. */
function fencedWorkers(cluster: Cluster): string[] {
  return cluster.liveWorkers().filter((name) => /lease lost/.test(cluster.node(name).process.stdout));
}

async function compact(client: Etcd3): Promise<number> {
  const revision = await currentRevision(client);
  await client.kv.compact({ revision: String(revision), physical: true });
  return revision;
}

describe("etcd failing under a running cluster (2 masters, 3–4 workers, real processes)", () => {
  it("after etcd restarts on the same data, every process reconnects; no task is lost or run twice", async () => {
    const etcd = await startEtcd();
    let cluster: Cluster | undefined;
    try {
      cluster = await Cluster.start({ ...timings, endpoints: [etcd.hostPort], workers: 3 });
      await etcd.stop();
      await etcd.start();
      await cluster.waitConverged({ timeoutMs: 30_000 });

      cluster.setTasks(unitTasks(27));
      await scheduled(cluster);
      await cluster.waitConverged();
      expect(await cluster.invariantProblems()).toEqual([]);
    } finally {
      // The processes go before the etcd they run on.
      await cluster?.close();
      await etcd.destroy();
    }
  });

  it("a 3-member etcd cluster keeps the service going when it loses a follower, and later its leader", async () => {
    const etcd = await startEtcdCluster(3);
    let cluster: Cluster | undefined;
    try {
      cluster = await Cluster.start({ ...timings, endpoints: etcd.endpoints, workers: 3 });

      const follower =
        (await raftLeader(etcd.members)) === etcd.members[0] ? etcd.members[1] : etcd.members[0];
      await follower.kill();
      cluster.setTasks(unitTasks(27));
      await scheduled(cluster);
      await cluster.waitConverged({ timeoutMs: 30_000 });

      await follower.start();
      await (await raftLeader(etcd.members)).kill();
      cluster.setTasks(unitTasks(21));
      await scheduled(cluster);
      await cluster.waitConverged({ timeoutMs: 30_000 });
      expect(await cluster.invariantProblems()).toEqual([]);
      // Two members of three always answered: no worker had reason to stop its tasks.
      expect(fencedWorkers(cluster)).toEqual([]);
    } finally {
      // The processes go before the etcd they run on.
      await cluster?.close();
      await etcd.destroy();
    }
  });

  it("a worker cut off while its tasks change and etcd compacts that history resyncs on reconnect and misses nothing", async () => {
    const etcd = await startEtcd();
    const proxy = new TcpProxy({ host: "127.0.0.1", port: etcd.spec.clientPort });
    await proxy.start();
    let cluster: Cluster | undefined;
    try {
      // A 3 s lease: the worker must stay cut off long enough to miss a schedule and a compaction,
      // yet not long enough to fence itself (which would re-register instead of resyncing).
      cluster = await Cluster.create({ ttl: "3s", rebalanceWait: "200ms", endpoints: [etcd.hostPort] });
      for (const name of ["m1", "m2"]) await cluster.startMaster(name);
      for (const name of ["w1", "w2", "w3"]) cluster.startWorker(name);
      const island = cluster.startWorker("w4", { etcd: [proxy.hostPort] });
      const before = await cluster.waitConverged();
      const dropped = (before.get("w4") ?? []).slice(0, 2);
      expect(dropped).toHaveLength(2);
      const offset = island.process.stdout.length;

      proxy.partition();
      const tasks = cluster.generatedTasks;
      const added: Task[] = dropped.map((id, i) => ({
        id: `late-${i}`,
        group: tasks.find((task) => task.id === id)?.group,
      }));
      cluster.setTasks([...tasks.filter((task) => !dropped.includes(task.id)), ...added]);
      expect((await cluster.schedule()).status).toBe(200);
      const missed = (await cluster.state()).assignment.get("w4");
      expect(missed).not.toEqual(before.get("w4"));
      await compact(cluster.client);
      proxy.heal();

      await cluster.waitConverged();
      const log = island.process.stdout.slice(offset);
      expect(log).toMatch(/watch resynchronised from a fresh read/);
      expect(log).not.toMatch(/lease lost/);
      expect(await cluster.invariantProblems()).toEqual([]);
    } finally {
      await cluster?.close();
      await proxy.stop();
      await etcd.destroy();
    }
  });
});

describe("an etcd member cut off from its quorum (its peer traffic black-holed, the process running)", () => {
  it("a worker whose task watch runs through that member still follows its assignment: watches require a leader", async () => {
    const { etcd, peerProxies } = await startPeerProxiedEtcdCluster(3);
    const clients: Etcd3[] = [];
    let worker: Worker | undefined;
    try {
      const leader = await raftLeader(etcd.members);
      const cutOff = etcd.members.findIndex((member) => member !== leader);
      const isolated = etcd.members[cutOff];
      const healthy = etcd.members.filter((member) => member !== isolated).map((m) => m.hostPort);
      const probe = createEtcdClient({ etcd: [isolated.hostPort], dialTimeout: 2_000 });
      clients.push(probe);
      const isolatedId = BigInt((await probe.maintenance.status()).header.member_id).toString(16);

      // Keep-alives and writes go through the healthy members; the task watch through all three,
      // opened on the member about to be cut off (the connection pool tries the last host first).
      const client = createEtcdClient({ etcd: healthy, dialTimeout: 2_000 });
      const watches = createEtcdClient({ etcd: [...healthy, isolated.hostPort], dialTimeout: 2_000 });
      clients.push(client, watches);
      Object.defineProperty(client, "watchClient", { value: watches.watchClient });
      const started: string[] = [];
      const keys = keyLayout(uniqueRoot("isolated"));
      worker = new Worker({
        client,
        root: keys.root,
        name: "w1",
        ttlMs: 3_000,
        stopTimeoutMs: 500,
        handler: { start: (task) => void started.push(task.id), stop: () => {} },
      });
      ConnectionPool.deterministicOrder = true;
      try {
        await worker.start();
      } finally {
        ConnectionPool.deterministicOrder = false;
      }

      peerProxies[cutOff].partition();
      for (const [i, proxy] of peerProxies.entries()) if (i !== cutOff) proxy.partitionFrom(isolatedId);
      await client.put(keys.task("w1", "t1")).value(JSON.stringify({ id: "t1" }));

      await waitFor(
        "the worker to start the task assigned while its watch's member was cut off",
        () => started.includes("t1"),
        15_000,
      );
      expect(worker.status).not.toBe("lost");
    } finally {
      await worker?.stop();
      for (const client of clients) client.close();
      await etcd.destroy();
      await Promise.all(peerProxies.map((proxy) => proxy.stop()));
    }
  });
});
