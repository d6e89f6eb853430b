import type { Etcd3 } from "etcd3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEtcdClient } from "../../../src/node/client.js";
import { PrefixWatcher, RangesWatcher } from "../../../src/watcher/index.js";
import { prefixRangeEnd } from "../../../src/node/index.js";
import { testClient, uniqueRoot, waitFor } from "../../helpers/context.js";
import { type EtcdMember, startEtcd } from "../../helpers/etcd.js";
import { TcpProxy } from "../../helpers/tcp-proxy.js";

// A watch that reconnects behind more history than one gRPC message may carry (64 MiB in our client):
// etcd 3.4 answers a catching-up watch with up to 1,000 revisions in ONE response unless the watch asks
// for fragments. Unfragmented, the client refuses the message (RESOURCE_EXHAUSTED), reconnects from the
// same revision and is refused again, for as long as that history is kept: the watcher never catches up.
let member: EtcdMember;
beforeAll(async () => {
  member = await startEtcd();
});
afterAll(async () => {
  await member?.destroy();
});

const VALUE = "x".repeat(1_250_000);
/** 60 × 1.25 MB: 75 MB of history, past the 64 MiB a message may hold. */
const WRITES = 60;

async function proxiedClient(): Promise<{ proxy: TcpProxy; client: Etcd3; close(): Promise<void> }> {
  const proxy = new TcpProxy({ host: "127.0.0.1", port: Number(member.hostPort.split(":")[1]) });
  await proxy.start();
  const client = createEtcdClient({ etcd: [proxy.hostPort], dialTimeout: 2_000 });
  return {
    proxy,
    client,
    async close() {
      client.close();
      await proxy.stop();
    },
  };
}

/** Writes the bulky history while `proxy` is cut off; resolves with etcd's revision after it. */
async function bulkyHistoryWhileCutOff(proxy: TcpProxy, prefix: string): Promise<number> {
  const direct = testClient([member.hostPort]);
  try {
    proxy.partition();
    let revision = 0;
    for (let i = 0; i < WRITES; i++) {
      const put = await direct.put(`${prefix}bulk-${i}`).value(VALUE).exec();
      revision = Number(put.header.revision);
    }
    // Deleted again: a fresh read would be small; only the history is large.
    for (let i = 0; i < WRITES; i++) {
      const deleted = await direct.delete().key(`${prefix}bulk-${i}`).exec();
      revision = Number(deleted.header.revision);
    }
    proxy.heal();
    return revision;
  } finally {
    direct.close();
  }
}

describe("a watch catching up on more history than one message holds", () => {
  it("a prefix watcher catches up (etcd sends the history in fragments)", async () => {
    const prefix = `/${uniqueRoot("bulk-prefix")}/`;
    const { proxy, client, close } = await proxiedClient();
    const watcher = new PrefixWatcher(client, prefix);
    watcher.on("error", () => undefined); // the cut-off interrupts it
    try {
      await watcher.start();
      const target = await bulkyHistoryWhileCutOff(proxy, prefix);
      await waitFor("the watcher to catch up", () => watcher.revision >= target, 30_000);
      expect(watcher.entries.size).toBe(0);
    } finally {
      await watcher.close();
      await close();
    }
  }, 60_000);

  it("a ranges watcher catches up, and every event of the history is applied once", async () => {
    const prefix = `/${uniqueRoot("bulk-ranges")}/`;
    const { proxy, client, close } = await proxiedClient();
    let applied = 0;
    const ranges = [`${prefix}a/`, `${prefix}b/`].map((key) => ({
      key: Buffer.from(key),
      range_end: prefixRangeEnd(key),
    }));
    const watcher = new RangesWatcher<string>(client, ranges, {
      decode: (event) => event.kv.key.toString(),
      snapshot: async () => {
        const read = await client.get(`${prefix}`).exec();
        return { revision: Number(read.header.revision), kvs: [] };
      },
      sink: {
        replaced: () => undefined,
        applied: (_revision, events) => {
          applied += events.length;
        },
      },
    });
    watcher.on("error", () => undefined);
    try {
      await watcher.start();
      const target = await bulkyHistoryWhileCutOff(proxy, `${prefix}a/`);
      // A mark in both ranges in one transaction: the merge releases a revision once every watch is past it.
      const direct = testClient([member.hostPort]);
      const mark = await direct
        .if(`${prefix}a/mark`, "Version", "==", 0)
        .then(direct.put(`${prefix}a/mark`).value("m"), direct.put(`${prefix}b/mark`).value("m"))
        .commit();
      expect(Number(mark.header.revision)).toBeGreaterThan(target);
      await waitFor(
        "the watcher to catch up",
        () => watcher.revision >= Number(mark.header.revision),
        30_000,
      );
      expect(applied).toBe(2 * WRITES + 2);
    } finally {
      await watcher.close();
      await close();
    }
  }, 60_000);
});
