import type { Etcd3, IEvent } from "etcd3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEtcdClient } from "../../../src/node/client.js";
import { prefixRangeEnd, readPrefixPaged, silentLogger } from "../../../src/node/index.js";
import { PrefixWatcher, RangesWatcher, WatchGroup } from "../../../src/watcher/index.js";
import { testClient, uniqueRoot, waitFor } from "../../helpers/context.js";
import { type EtcdMember, startEtcd } from "../../helpers/etcd.js";
import { TcpProxy } from "../../helpers/tcp-proxy.js";

// etcd refuses a watch from a compacted revision only when it is BELOW the compaction's; a compaction
// at revision D removes a deletion made at D (the tombstone is the key's last revision there). So a
// watch resumed from D after a compaction at D is accepted and never delivers that deletion: the
// watcher must resume so that such a compaction is reported (ErrCompacted, then a fresh read).
let member: EtcdMember;
beforeAll(async () => {
  member = await startEtcd();
});
afterAll(async () => {
  await member?.destroy();
});

/** What each kind of watcher shows the test: its applied revision, whether its view holds a key, its resyncs. */
interface Subject {
  start(): Promise<unknown>;
  revision(): number;
  has(key: string): boolean;
  resyncs: unknown[];
  close(): Promise<void>;
}

type Build = (client: Etcd3, root: string) => Subject;

/** A PrefixWatcher's or RangesWatcher's subject: its view holds a key when `has` says so. */
function subjectOf(watcher: PrefixWatcher | RangesWatcher<IEvent>, has: (key: string) => boolean): Subject {
  const resyncs: unknown[] = [];
  watcher.on("error", () => undefined); // the cut-off interrupts it
  watcher.on("resync", (event: unknown) => resyncs.push(event));
  return {
    resyncs,
    start: () => watcher.start(),
    revision: () => watcher.revision,
    has,
    close: () => watcher.close(),
  };
}

const prefixWatcher: Build = (client, root) => {
  const watcher = new PrefixWatcher(client, `${root}a/`);
  return subjectOf(watcher, (key) => watcher.entries.has(key));
};

const rangesWatcher: Build = (client, root) => {
  const state = new Set<string>();
  const watcher = new RangesWatcher<IEvent>(
    client,
    [`${root}a/`, `${root}b/`].map((key) => ({ key: Buffer.from(key), range_end: prefixRangeEnd(key) })),
    {
      decode: (event) => event,
      snapshot: () => readPrefixPaged(client, root),
      sink: {
        replaced: (snapshot) => {
          state.clear();
          for (const kv of snapshot.kvs) state.add(kv.key.toString());
        },
        applied: (_revision, events) => {
          for (const event of events) {
            if (event.type === "Put") state.add(event.kv.key.toString());
            else state.delete(event.kv.key.toString());
          }
        },
      },
    },
  );
  return subjectOf(watcher, (key) => state.has(key));
};

const groupMember: Build = (client, root) => {
  const group = new WatchGroup(client, silentLogger);
  const [a, b] = [`${root}a/`, `${root}b/`].map((prefix) => new PrefixWatcher(client, prefix, { group }));
  const resyncs: unknown[] = [];
  for (const watcher of [a, b]) {
    watcher?.on("error", () => undefined);
    watcher?.on("resync", (event) => resyncs.push(event));
  }
  return {
    resyncs,
    start: () => Promise.all([a?.start(), b?.start()]),
    revision: () => Math.min(a?.revision ?? 0, b?.revision ?? 0),
    has: (key) => Boolean(a?.entries.has(key) || b?.entries.has(key)),
    close: () => group.close(),
  };
};

async function throughProxy(build: Build, root: string) {
  const proxy = new TcpProxy({ host: "127.0.0.1", port: Number(member.hostPort.split(":")[1]) });
  await proxy.start();
  const client = createEtcdClient({ etcd: [proxy.hostPort], dialTimeout: 2_000 });
  const subject = build(client, root);
  return {
    proxy,
    subject,
    async close() {
      await subject.close();
      client.close();
      await proxy.stop();
    },
  };
}

/** Writes one key in a/ and one in b/ in one transaction (every watcher here passes it); its revision. */
async function mark(direct: Etcd3, root: string, name: string): Promise<number> {
  const success = [`${root}a/${name}`, `${root}b/${name}`].map((key) => ({
    request_put: { key: Buffer.from(key), value: Buffer.from(name) },
  }));
  return Number((await direct.kv.txn({ compare: [], success, failure: [] })).header.revision);
}

describe.each([
  ["a PrefixWatcher", prefixWatcher],
  ["a RangesWatcher", rangesWatcher],
  ["a WatchGroup", groupMember],
])("%s resumed after a compaction at the revision just after the one it applied", (_name, build) => {
  it("does not lose the deletion made at that revision", async () => {
    const direct = testClient([member.hostPort]);
    const root = `/${uniqueRoot("compacted-resume")}/`;
    const doomed = `${root}a/k0`;
    await direct.put(doomed).value("0");
    const { proxy, subject, close } = await throughProxy(build, root);
    try {
      await subject.start();
      const applied = await mark(direct, root, "m1");
      await waitFor("the watcher at the mark", () => subject.revision() === applied);

      proxy.partition(); // the stream is cut off before the deletion reaches it
      const deleted = Number((await direct.delete().key(doomed).exec()).header.revision);
      expect(deleted).toBe(applied + 1);
      await direct.kv.compact({ revision: deleted, physical: true });
      proxy.heal();

      const after = await mark(direct, root, "m2");
      await waitFor("the watcher past the second mark", () => subject.revision() >= after, 15_000);
      expect(subject.has(doomed)).toBe(false);
      // etcd no longer holds the deletion: only a fresh read can have shown it.
      expect(subject.resyncs.length).toBeGreaterThan(0);
    } finally {
      await close();
    }
  });
});

describe("a PrefixWatcher whose first stream opens after a compaction at the revision just after its snapshot", () => {
  it("does not lose the deletion made at that revision", async () => {
    const direct = testClient([member.hostPort]);
    const root = `/${uniqueRoot("compacted-start")}/`;
    const doomed = `${root}a/k0`;
    await direct.put(doomed).value("0");
    const client = testClient([member.hostPort]);
    let first = true;
    const watcher = new PrefixWatcher(client, `${root}a/`, {
      // The snapshot holds the key; before the stream opens, it is deleted and etcd compacted there.
      snapshot: async () => {
        const snapshot = await readPrefixPaged(client, `${root}a/`);
        if (first) {
          first = false;
          const deleted = Number((await direct.delete().key(doomed).exec()).header.revision);
          expect(deleted).toBe(snapshot.revision + 1);
          await direct.kv.compact({ revision: deleted, physical: true });
        }
        return snapshot;
      },
    });
    watcher.on("error", () => undefined);
    const resyncs: unknown[] = [];
    watcher.on("resync", (event) => resyncs.push(event));
    try {
      await watcher.start();
      const after = await mark(direct, root, "m");
      await waitFor("the watcher past the mark", () => watcher.revision >= after, 15_000);
      expect(watcher.entries.has(doomed)).toBe(false);
      expect(resyncs).toHaveLength(1);
    } finally {
      await watcher.close();
    }
  });
});
