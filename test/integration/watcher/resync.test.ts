import { rmSync } from "node:fs";
import type { Etcd3 } from "etcd3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEtcdClient } from "../../../src/node/client.js";
import { PrefixWatcher, type ResyncEvent, type WatchChange } from "../../../src/watcher/index.js";
import { testClient, uniqueRoot, waitFor } from "../../helpers/context.js";
import { type EtcdMember, startEtcd } from "../../helpers/etcd.js";
import { TcpProxy } from "../../helpers/tcp-proxy.js";

// These tests compact and restart etcd, so they use their own member instead of the run's shared one.
let member: EtcdMember;
beforeAll(async () => {
  member = await startEtcd();
});
afterAll(async () => {
  await member?.destroy();
});

async function freshRead(client: Etcd3, prefix: string): Promise<Map<string, string>> {
  return new Map(Object.entries(await client.getAll().prefix(prefix).strings()));
}

async function currentRevision(client: Etcd3): Promise<number> {
  return Number((await client.get("/revision-probe").exec()).header.revision);
}

/** A watcher whose etcd connection runs through a proxy the test can partition. */
async function partitionableWatcher(prefix: string) {
  const proxy = new TcpProxy({ host: "127.0.0.1", port: Number(member.hostPort.split(":")[1]) });
  await proxy.start();
  const client = createEtcdClient({ etcd: [proxy.hostPort], dialTimeout: 2_000 });
  const watcher = new PrefixWatcher(client, prefix);
  const changes: WatchChange[] = [];
  const resyncs: ResyncEvent[] = [];
  watcher.on("change", (change) => changes.push(change));
  watcher.on("resync", (event) => resyncs.push(event));
  watcher.on("error", () => undefined); // interruptions are expected here
  return {
    proxy,
    watcher,
    changes,
    resyncs,
    async close() {
      await watcher.close();
      client.close();
      await proxy.stop();
    },
  };
}

/** Writes that the watcher misses: a changed value, a same-value rewrite, a delete, a new key, a put-then-delete. */
async function missedWrites(direct: Etcd3, prefix: string): Promise<void> {
  await direct.put(`${prefix}a`).value("10");
  await direct.put(`${prefix}c`).value("3");
  await direct.delete().key(`${prefix}b`);
  await direct.put(`${prefix}e`).value("5");
  await direct.delete().key(`${prefix}d`);
  await direct.put(`${prefix}temp`).value("gone again");
  await direct.delete().key(`${prefix}temp`);
}

function expectMissedChangesEmitted(changes: WatchChange[], prefix: string): void {
  const summary = changes.map((change) =>
    change.type === "put"
      ? ["put", change.key.slice(prefix.length), change.value, change.synthetic]
      : ["delete", change.key.slice(prefix.length), change.previous, change.synthetic],
  );
  expect(summary).toEqual(
    expect.arrayContaining([
      ["put", "a", "10", true],
      ["put", "c", "3", true],
      ["put", "e", "5", true],
      ["delete", "b", "2", true],
      ["delete", "d", "4", true],
    ]),
  );
  expect(summary).toHaveLength(5);
}

describe("PrefixWatcher after lost history", () => {
  it("rebuilds its view from a fresh read and emits the missed changes when etcd compacted them while it was partitioned", async () => {
    const direct = testClient([member.hostPort]);
    const prefix = `/${uniqueRoot("compact")}/`;
    await direct.put(`${prefix}a`).value("1");
    await direct.put(`${prefix}b`).value("2");
    await direct.put(`${prefix}c`).value("3");
    const subject = await partitionableWatcher(prefix);
    try {
      await subject.watcher.start();
      await direct.put(`${prefix}d`).value("4");
      await waitFor("the watcher to see d", () => subject.watcher.entries.get(`${prefix}d`) === "4");
      const before = subject.changes.length;
      const revisionBefore = subject.watcher.revision;

      subject.proxy.partition();
      await missedWrites(direct, prefix);
      const compactedAt = await currentRevision(direct);
      await direct.kv.compact({ revision: compactedAt, physical: true });
      subject.proxy.heal();

      const resync = await waitFor("a resync", () => subject.resyncs[0]);
      expect(resync).toMatchObject({
        fromRevision: revisionBefore,
        toRevision: compactedAt,
        puts: 3,
        deletes: 2,
      });
      expect(resync.reason).toMatch(/compacted/);
      expect(new Map(subject.watcher.entries)).toEqual(await freshRead(direct, prefix));
      expectMissedChangesEmitted(subject.changes.slice(before), prefix);
      expect(subject.watcher.revision).toBe(compactedAt);

      // It then continues live from the new revision.
      await direct.put(`${prefix}f`).value("6");
      await waitFor("the watcher to see f", () => subject.watcher.entries.get(`${prefix}f`) === "6");
      expect(subject.changes.at(-1)).toMatchObject({
        type: "put",
        synthetic: false,
        revision: compactedAt + 1,
      });
    } finally {
      await subject.close();
    }
  });

  it("resumes without loss across an etcd restart (stop and start of the same member)", async () => {
    const direct = testClient([member.hostPort]);
    const prefix = `/${uniqueRoot("restart")}/`;
    const watcherClient = testClient([member.hostPort]);
    const watcher = new PrefixWatcher(watcherClient, prefix);
    const changes: WatchChange[] = [];
    watcher.on("change", (change) => changes.push(change));
    watcher.on("error", () => undefined);
    try {
      await watcher.start();
      await direct.put(`${prefix}a`).value("1");
      await waitFor("the watcher to see a", () => watcher.entries.has(`${prefix}a`));

      await member.stop();
      await member.start();
      await direct.put(`${prefix}b`).value("2");
      await direct.delete().key(`${prefix}a`);

      await waitFor("the watcher to see a deleted", () => !watcher.entries.has(`${prefix}a`), 15_000);
      expect(new Map(watcher.entries)).toEqual(await freshRead(direct, prefix));
      expect(
        changes.map((change) => [change.type, change.key.slice(prefix.length), change.synthetic]),
      ).toEqual([
        ["put", "a", false],
        ["put", "b", false],
        ["delete", "a", false],
      ]);
    } finally {
      await watcher.close();
    }
  });

  it("emits the missed changes when etcd restarted and compacted them while it was cut off", async () => {
    const direct = testClient([member.hostPort]);
    const prefix = `/${uniqueRoot("restart-compact")}/`;
    await direct.put(`${prefix}a`).value("1");
    await direct.put(`${prefix}b`).value("2");
    await direct.put(`${prefix}c`).value("3");
    await direct.put(`${prefix}d`).value("4");
    const subject = await partitionableWatcher(prefix);
    try {
      await subject.watcher.start();
      subject.proxy.partition();
      await missedWrites(direct, prefix);
      await direct.kv.compact({ revision: await currentRevision(direct), physical: true });
      await member.stop();
      await member.start();
      subject.proxy.heal();

      await waitFor("a resync", () => subject.resyncs.length > 0, 15_000);
      expect(new Map(subject.watcher.entries)).toEqual(await freshRead(direct, prefix));
      expectMissedChangesEmitted(subject.changes, prefix);
    } finally {
      await subject.close();
    }
  });

  it("rebuilds its view when etcd comes back as a new cluster with an older revision", async () => {
    const replaced = await startEtcd();
    const direct = testClient([replaced.hostPort]);
    const watcherClient = testClient([replaced.hostPort]);
    const prefix = "/replaced/";
    for (let i = 0; i < 20; i++) await direct.put(`${prefix}old${i}`).value(String(i));
    const watcher = new PrefixWatcher(watcherClient, prefix);
    const resyncs: ResyncEvent[] = [];
    watcher.on("resync", (event) => resyncs.push(event));
    watcher.on("error", () => undefined);
    try {
      await watcher.start();
      expect(watcher.entries.size).toBe(20);
      const revisionBefore = watcher.revision;

      // Same address, wiped data: a different history whose revision is behind the watcher's view.
      await replaced.kill();
      rmSync(replaced.dataDir, { recursive: true, force: true });
      await replaced.start();
      await direct.put(`${prefix}new`).value("fresh");

      const resync = await waitFor("a resync", () => resyncs[0], 15_000);
      // The new key arrives either in the fresh read or live afterwards, depending on who is first.
      expect(resync).toMatchObject({ fromRevision: revisionBefore, deletes: 20 });
      expect(resync.reason).toMatch(/behind/);
      await waitFor("the new key", () => watcher.entries.has(`${prefix}new`));
      expect(new Map(watcher.entries)).toEqual(new Map([[`${prefix}new`, "fresh"]]));
    } finally {
      await watcher.close();
      await replaced.destroy();
    }
  });

  it("closes promptly while it cannot reach etcd", async () => {
    const proxyTarget = await partitionableWatcher(`/${uniqueRoot("close")}/`);
    await proxyTarget.watcher.start();
    proxyTarget.proxy.partition();
    proxyTarget.proxy.heal(); // resets the connection: the watcher is now reconnecting
    proxyTarget.proxy.partition();
    const startedAt = Date.now();
    await proxyTarget.close();
    expect(Date.now() - startedAt).toBeLessThan(1_000);
  });
});
