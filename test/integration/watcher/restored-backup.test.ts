import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Etcd3, IEvent } from "etcd3";
import { afterEach, describe, expect, it } from "vitest";
import { createEtcdClient } from "../../../src/node/client.js";
import { PrefixWatcher, RangesWatcher } from "../../../src/watcher/index.js";
import { waitFor } from "../../helpers/context.js";
import { startEtcd } from "../../helpers/etcd.js";
import { TcpProxy } from "../../helpers/tcp-proxy.js";

/**
 * etcd restored from a backup goes back to the backup's revision. When it is written past the
 * revision a watcher had applied before the watcher reconnects, a watch resumed from that revision
 * would silently skip what differs between the two histories: the watchers must notice and read afresh.
 */
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function client(endpoint: string): Etcd3 {
  const made = createEtcdClient({ etcd: [endpoint], dialTimeout: 2_000 });
  cleanups.push(() => made.close());
  return made;
}

/** A PrefixWatcher (its view) and a RangesWatcher (a sink mirroring its events) over `prefix`. */
async function startWatchers(etcd: Etcd3, prefix: string) {
  const resyncs: string[] = [];
  const mirror = new Map<string, string>();
  const prefixWatcher = new PrefixWatcher(etcd, prefix);
  const rangesWatcher = new RangesWatcher<IEvent>(
    etcd,
    [{ key: Buffer.from(prefix), range_end: Buffer.from(`${prefix.slice(0, -1)}0`) }],
    {
      decode: (event) => event,
      snapshot: async () => {
        const read = await etcd.getAll().prefix(prefix).exec();
        return { revision: Number(read.header.revision), kvs: read.kvs };
      },
      sink: {
        replaced: (snapshot) => {
          mirror.clear();
          for (const kv of snapshot.kvs) mirror.set(kv.key.toString(), kv.value.toString());
        },
        applied: (_revision, events) => {
          for (const { type, kv } of events) {
            if (type === "Put") mirror.set(kv.key.toString(), kv.value.toString());
            else mirror.delete(kv.key.toString());
          }
        },
      },
    },
  );
  for (const watcher of [prefixWatcher, rangesWatcher]) {
    watcher.on("error", () => undefined);
    watcher.on("resync", (event) => resyncs.push(event.reason));
    await watcher.start();
    cleanups.push(() => watcher.close());
  }
  const views = () => [new Map(prefixWatcher.entries), new Map(mirror)];
  const revisions = () => Math.min(prefixWatcher.revision, rangesWatcher.revision);
  return { resyncs, views, revisions };
}

describe("watchers of an etcd restored from a backup and written past their revision", () => {
  it.each([
    ["a put", "put"],
    ["a deletion", "delete"],
  ] as const)(
    "read afresh when the last change they applied (%s) is not in etcd's history any more",
    async (_name, lastChange) => {
      const member = await startEtcd();
      cleanups.push(() => member.destroy());
      const prefix = "/restore/";
      let direct = client(member.hostPort);
      for (let i = 0; i < 5; i++) await direct.put(`${prefix}k${i}`).value(`old-${i}`);

      // The backup: a copy of the stopped member's data directory (what a snapshot restore gives back).
      await member.stop();
      const backup = join(mkdtempSync(join(tmpdir(), "escheduler-backup-")), "data");
      cleanups.push(() => rmSync(join(backup, ".."), { recursive: true, force: true }));
      cpSync(member.dataDir, backup, { recursive: true });
      await member.start();

      const proxy = new TcpProxy({ host: "127.0.0.1", port: Number(member.hostPort.split(":")[1]) });
      await proxy.start();
      cleanups.push(() => proxy.stop());
      const subject = await startWatchers(client(proxy.hostPort), prefix);

      // Changes after the backup, which the watchers apply; the last one is a put or a deletion.
      await direct.put(`${prefix}after-backup`).value("lost with the restore");
      await direct.put(`${prefix}k0`).value("changed after the backup");
      if (lastChange === "delete") await direct.delete().key(`${prefix}k1`);
      const applied = Number((await direct.get(`${prefix}k0`).exec()).header.revision);
      await waitFor("the watchers to apply the changes", () => subject.revisions() >= applied);

      // Cut off, the member is restored from the backup and written past the applied revision.
      proxy.partition();
      await member.stop();
      rmSync(member.dataDir, { recursive: true, force: true });
      cpSync(backup, member.dataDir, { recursive: true });
      await member.start();
      direct = client(member.hostPort);
      let revision = 0;
      for (let i = 0; revision <= applied + 2; i++) {
        revision = Number(
          (await direct.put(`${prefix}new-${i}`).value(`restored-${i}`).exec()).header.revision,
        );
      }
      proxy.heal();

      const expected = new Map(Object.entries(await direct.getAll().prefix(prefix).strings()));
      await waitFor(
        "both watchers to equal a fresh read",
        () =>
          subject
            .views()
            .every((view) => JSON.stringify([...view].sort()) === JSON.stringify([...expected].sort())),
        20_000,
      );
      expect(subject.resyncs).toHaveLength(2);
      for (const reason of subject.resyncs) expect(reason).toMatch(/history differs/);
    },
  );
});
