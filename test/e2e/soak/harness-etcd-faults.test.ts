import { afterAll, describe, expect, it } from "vitest";
import { createEtcdClient } from "../../../src/node/index.js";
import { startPeerProxiedEtcdCluster } from "../../helpers/tcp-proxy.js";
import { currentRevision, EtcdHistory, withEtcdRetry } from "../../invariants/index.js";

/**
 * The soak harness's own etcd calls, on member 0, while etcd's raft leader (another member) is cut off
 * from its peers: they must answer (retried through the leader change), never reject, and the history
 * watch must resume from its last revision with every write in it.
 */
describe("the soak harness's etcd calls through a leader change", () => {
  const cleanup: Array<() => Promise<void> | void> = [];
  afterAll(async () => {
    for (const step of cleanup.reverse()) await step();
  });

  it("revision reads and history marks answer, and the history watch keeps every write", async () => {
    const { etcd, peerProxies } = await startPeerProxiedEtcdCluster(3);
    cleanup.push(() => etcd.destroy());
    cleanup.push(() => Promise.all(peerProxies.map((proxy) => proxy.stop())).then(() => undefined));
    const clients = etcd.members.map((member) =>
      createEtcdClient({ etcd: [member.hostPort], dialTimeout: 2_000 }),
    );
    cleanup.push(() => clients.forEach((client) => client.close()));
    const harness = clients[0];
    const ids = await Promise.all(
      clients.map(async (client) =>
        BigInt((await withEtcdRetry(() => client.maintenance.status())).header.member_id),
      ),
    );
    const history = await EtcdHistory.record(harness, "/h/");
    cleanup.push(() => history.close());

    // Writes through member 1 or 2 (whichever is not cut off), each retried until etcd takes it.
    const written: number[] = [];
    let writing = true;
    let writer = clients[1];
    const writes = (async () => {
      for (let i = 0; writing; i++) {
        try {
          const put = await writer
            .put(`/h/k${i % 5}`)
            .value(String(i))
            .exec();
          written.push(Number(put.header.revision));
        } catch {
          // a write refused during the election is simply not in the history
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();

    const failures: string[] = [];
    const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    /** etcd's raft leader, kept off member 0 (the harness's member, which the soak never isolates). */
    const leaderOffMember0 = async (): Promise<number> => {
      for (let attempt = 0; ; attempt++) {
        const leader = ids.indexOf(BigInt((await withEtcdRetry(() => harness.maintenance.status())).leader));
        if (leader > 0) return leader;
        if (leader === 0) {
          const targetID = ids[1 + (attempt % 2)].toString();
          await harness.maintenance.moveLeader({ targetID }).catch(() => undefined);
        }
        await pause(100);
      }
    };
    for (let cycle = 0; cycle < 3; cycle++) {
      let calling = true;
      const calls: Array<Promise<unknown>> = [];
      const caller = (async () => {
        while (calling) {
          calls.push(currentRevision(harness).catch((error) => failures.push(`revision: ${String(error)}`)));
          calls.push(history.caughtUp(harness).catch((error) => failures.push(`caughtUp: ${String(error)}`)));
          await pause(10);
        }
      })();
      // A leader transfer between members 1 and 2, then the soak's isolation of the new leader: cut
      // off from its peers, still answering clients.
      let leader = await leaderOffMember0();
      await clients[leader].maintenance
        .moveLeader({ targetID: ids[3 - leader].toString() })
        .catch(() => undefined);
      leader = await leaderOffMember0();
      writer = clients[3 - leader];
      const hex = ids[leader].toString(16);
      peerProxies[leader].partition();
      for (const [i, proxy] of peerProxies.entries()) if (i !== leader) proxy.partitionFrom(hex);
      await pause(2_000);
      for (const proxy of peerProxies) proxy.heal();
      await pause(500);
      calling = false;
      await caller;
      await Promise.all(calls);
    }
    writing = false;
    await writes;
    await history.caughtUp(harness);

    expect(failures).toEqual([]);
    expect(written.length).toBeGreaterThan(10);
    const seen = new Set(history.events.filter((e) => !e.synthetic).map((e) => e.revision));
    expect(written.filter((revision) => !seen.has(revision))).toEqual([]);
    expect(history.gaps).toEqual([]);
  }, 120_000);
});
