import type { IWatchRequest } from "etcd3";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createEtcdClient } from "../../../src/node/client.js";
import { silentLogger } from "../../../src/node/index.js";
import { PrefixWatcher, type ResyncEvent, type WatchChange, WatchGroup } from "../../../src/watcher/index.js";
import { testClient, uniqueRoot, waitFor } from "../../helpers/context.js";
import { type EtcdMember, startEtcd } from "../../helpers/etcd.js";
import { TcpProxy } from "../../helpers/tcp-proxy.js";

// These tests compact etcd, so they use their own member instead of the run's shared one.
let member: EtcdMember;
beforeAll(async () => {
  member = await startEtcd();
});
afterAll(async () => {
  await member?.destroy();
});

/** A group of one watcher per prefix, its connection through a proxy the test can partition. */
async function partitionableGroup(prefixes: string[]) {
  const proxy = new TcpProxy({ host: "127.0.0.1", port: Number(member.hostPort.split(":")[1]) });
  await proxy.start();
  const client = createEtcdClient({ etcd: [proxy.hostPort], dialTimeout: 2_000 });
  // Every watch the group creates (its prefix and start revision), on any stream.
  const creates: Array<{ key: string; from: number }> = [];
  const open = client.watchClient.watch.bind(client.watchClient);
  const streams = vi.spyOn(client.watchClient, "watch").mockImplementation(async (...args) => {
    const stream = await open(...args);
    const write = stream.write.bind(stream);
    stream.write = ((request: IWatchRequest, ...rest: unknown[]) => {
      const create = request.create_request;
      if (create) creates.push({ key: String(create.key), from: Number(create.start_revision) });
      return (write as (...all: unknown[]) => boolean)(request, ...rest);
    }) as typeof stream.write;
    return stream;
  });
  const reads = vi.spyOn(client.kv, "txn");
  const group = new WatchGroup(client, silentLogger);
  const members = prefixes.map((prefix) => {
    const watcher = new PrefixWatcher(client, prefix, { group });
    const changes: WatchChange[] = [];
    const resyncs: ResyncEvent[] = [];
    watcher.on("change", (change) => changes.push(change));
    watcher.on("resync", (event) => resyncs.push(event));
    watcher.on("error", () => undefined); // interruptions are expected here
    return { watcher, changes, resyncs };
  });
  return {
    proxy,
    members,
    streams,
    creates,
    reads,
    async close() {
      await Promise.all(members.map(({ watcher }) => watcher.close()));
      client.close();
      await proxy.stop();
    },
  };
}

const summary = (changes: WatchChange[]) =>
  changes.map((change) => [change.type, change.key, change.type === "put" ? change.value : undefined]);

describe("a watch group", () => {
  it("reads once and watches on one stream; each member applies its own events at once, a quiet one holding none back, each once across a reconnect", async () => {
    const direct = testClient([member.hostPort]);
    const root = `/${uniqueRoot("group")}/`;
    const [a, b, quiet] = ["a/", "b/", "quiet/"].map((name) => root + name);
    await direct.put(`${b}0`).value("0");
    const subject = await partitionableGroup([a, b, quiet]);
    const [ma, mb, mq] = subject.members;
    try {
      const views = await Promise.all(subject.members.map(({ watcher }) => watcher.start()));
      expect(views.map((view) => [...view.keys()])).toEqual([[], [`${b}0`], []]);
      expect(subject.reads).toHaveBeenCalledTimes(1);
      expect(subject.streams).toHaveBeenCalledTimes(1);

      await direct.put(`${a}1`).value("1");
      await waitFor(
        "a's member to see a/1 (the quiet member holds nothing back)",
        () => ma.changes.length === 1,
      );
      await direct.put(`${b}1`).value("1");
      await waitFor("b's member to see b/1", () => mb.changes.length === 1);

      // Cut off: each member resumes from its own revision, and sees each change once.
      subject.proxy.partition();
      await direct.put(`${a}2`).value("2");
      await direct.delete().key(`${b}0`);
      subject.proxy.heal();
      await waitFor("both members to catch up", () => ma.changes.length >= 2 && mb.changes.length >= 2);
      await direct.put(`${quiet}1`).value("1");
      await waitFor("the quiet member's first change", () => mq.changes.length === 1);

      expect(subject.streams.mock.calls.length).toBeGreaterThan(1);
      expect(summary(ma.changes)).toEqual([
        ["put", `${a}1`, "1"],
        ["put", `${a}2`, "2"],
      ]);
      expect(summary(mb.changes)).toEqual([
        ["put", `${b}1`, "1"],
        ["delete", `${b}0`, undefined],
      ]);
      expect(summary(mq.changes)).toEqual([["put", `${quiet}1`, "1"]]);
      expect(subject.members.flatMap((m) => m.resyncs)).toEqual([]);
    } finally {
      await subject.close();
      direct.close();
    }
  });

  it("resumes each member's watch from the revision that member applied: a busy member's history is not sent again", async () => {
    const direct = testClient([member.hostPort]);
    const root = `/${uniqueRoot("group-resume")}/`;
    const [busy, quiet] = ["busy/", "quiet/"].map((name) => root + name);
    const subject = await partitionableGroup([busy, quiet]);
    const [mb, mq] = subject.members;
    try {
      for (const { watcher } of subject.members) await watcher.start();
      const readAt = mq.watcher.revision;
      for (let i = 0; i < 5; i++) await direct.put(`${busy}${i}`).value(String(i));
      await waitFor("the busy member's five changes", () => mb.changes.length === 5);
      const busyAt = mb.watcher.revision;
      expect(busyAt).toBeGreaterThan(readAt);

      subject.proxy.partition();
      subject.proxy.heal();
      await waitFor("the watches created again", () => subject.creates.length === 4);

      expect(subject.creates.slice(2)).toEqual([
        { key: busy, from: busyAt },
        { key: quiet, from: readAt },
      ]);
      await direct.put(`${quiet}1`).value("1");
      await waitFor("the quiet member's first change", () => mq.changes.length === 1);
      expect(mb.changes).toHaveLength(5);
    } finally {
      await subject.close();
      direct.close();
    }
  });

  it("after a compaction, replaces every member's view from one fresh read, each emitting its own differences", async () => {
    const direct = testClient([member.hostPort]);
    const root = `/${uniqueRoot("group-compact")}/`;
    const [a, b] = ["a/", "b/"].map((name) => root + name);
    await direct.put(`${a}1`).value("1");
    await direct.put(`${b}1`).value("1");
    const subject = await partitionableGroup([a, b]);
    const [ma, mb] = subject.members;
    try {
      for (const { watcher } of subject.members) await watcher.start();
      subject.proxy.partition();
      await direct.put(`${a}2`).value("2");
      await direct.delete().key(`${b}1`);
      const compactedAt = Number((await direct.get("/revision-probe").exec()).header.revision);
      await direct.kv.compact({ revision: compactedAt, physical: true });
      const readsBefore = subject.reads.mock.calls.length;
      subject.proxy.heal();

      await waitFor("both members to resync", () => ma.resyncs.length > 0 && mb.resyncs.length > 0);
      expect(subject.reads.mock.calls.length - readsBefore).toBe(1);
      expect(ma.resyncs).toEqual([expect.objectContaining({ toRevision: compactedAt, puts: 1, deletes: 0 })]);
      expect(mb.resyncs).toEqual([expect.objectContaining({ toRevision: compactedAt, puts: 0, deletes: 1 })]);
      expect(summary(ma.changes)).toEqual([["put", `${a}2`, "2"]]);
      expect(summary(mb.changes)).toEqual([["delete", `${b}1`, undefined]]);
      expect([...ma.watcher.entries.keys()]).toEqual([`${a}1`, `${a}2`]);
      expect([...mb.watcher.entries.keys()]).toEqual([]);

      // Live again from the fresh read's revision.
      await direct.put(`${b}2`).value("2");
      await waitFor("b's member to see b/2", () => mb.watcher.entries.has(`${b}2`));
    } finally {
      await subject.close();
      direct.close();
    }
  });
});
