import type { Etcd3 } from "etcd3";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assignmentRanges, readAssignment } from "../../../src/master/read-assignment.js";
import { MasterView, readFresh, viewWatchRanges } from "../../../src/master/view/index.js";
import { createEtcdClient } from "../../../src/node/client.js";
import { KeyLayout, readRangesPaged, silentLogger } from "../../../src/node/index.js";
import { testClient, uniqueRoot, waitFor } from "../../helpers/context.js";
import { FakeWorker, tasks, testMaster } from "./fixtures.js";
import { type EtcdMember, startEtcd } from "../../helpers/etcd.js";
import { TcpProxy } from "../../helpers/tcp-proxy.js";
import { readFacts } from "../../helpers/read-facts.js";

// These tests compact etcd's history, so they use their own member instead of the run's shared one.
let member: EtcdMember;
beforeAll(async () => {
  member = await startEtcd();
});
afterAll(async () => {
  await member?.destroy();
});

/** A view whose etcd connection runs through a proxy the test can partition or hold. */
async function proxiedView(keys: KeyLayout) {
  const proxy = new TcpProxy({ host: "127.0.0.1", port: Number(member.hostPort.split(":")[1]) });
  await proxy.start();
  const client = createEtcdClient({ etcd: [proxy.hostPort], dialTimeout: 2_000 });
  const view = new MasterView(client, keys);
  return {
    proxy,
    view,
    async close() {
      await view.close();
      client.close();
      await proxy.stop();
    },
  };
}

async function revisionNow(client: Etcd3): Promise<number> {
  return Number((await client.get("/revision-probe").exec()).header.revision);
}

/** The leader's freshness mark as `leaderRead` writes it: both marks in one transaction; its revision. */
async function writeMark(client: Etcd3, keys: KeyLayout): Promise<number> {
  const put = (key: string) => ({ request_put: { key: Buffer.from(key), value: Buffer.from("leader") } });
  const response = await client.kv.txn({
    compare: [],
    success: [put(keys.viewMark), put(keys.controlsMark)],
    failure: [],
  });
  return Number(response.header.revision);
}

type Step =
  | { kind: "put"; key: number; value: string; leased: boolean }
  | { kind: "delete"; key: number }
  | { kind: "txn"; puts: number[]; deletes: number[] }
  | { kind: "revoke" }
  | { kind: "compact"; partitioned: boolean };

/** Keys in every range the view holds, and some it must ignore (statuses, the plan, run locks). */
function keyNames(keys: KeyLayout): string[] {
  return [
    keys.worker("w1"),
    keys.worker("w2"),
    keys.task("w1", "a"),
    keys.task("w1", "b"),
    keys.task("w2", "a"),
    keys.cordon("w1"),
    keys.draining("w2"),
    keys.paused,
    keys.pin("a"),
    keys.held("w1"),
    keys.left("w2"),
    keys.status("w1", "a"),
    keys.plan,
    keys.runLock("a"),
    keys.workerSlot(0),
  ];
}

const stepArbitrary = (count: number): fc.Arbitrary<Step> =>
  fc.oneof(
    {
      weight: 5,
      arbitrary: fc.record({
        kind: fc.constant("put" as const),
        key: fc.nat(count - 1),
        value: fc.string({ maxLength: 4 }),
        leased: fc.boolean(),
      }),
    },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant("delete" as const), key: fc.nat(count - 1) }) },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant("txn" as const),
        puts: fc.uniqueArray(fc.nat(count - 1), { maxLength: 3 }),
        deletes: fc.uniqueArray(fc.nat(count - 1), { maxLength: 2 }),
      }),
    },
    { weight: 1, arbitrary: fc.constant({ kind: "revoke" as const }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("compact" as const), partitioned: fc.boolean() }) },
  );

describe("MasterView (the leader's watch-fed read)", () => {
  it("equals a fresh read of its ranges at its revision after any puts, deletes, lease revocations and compactions", async () => {
    const direct = testClient([member.hostPort]);
    const names = keyNames(new KeyLayout("probe"));
    let resyncs = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(stepArbitrary(names.length), { minLength: 1, maxLength: 10 }),
        async (steps) => {
          const keys = new KeyLayout(uniqueRoot("view"));
          const all = keyNames(keys);
          let lease = (await direct.leaseClient.leaseGrant({ TTL: 60 })).ID;
          // The root's first write: from here the newest revision is always one of this root's events.
          await direct.put(keys.plan).value("{}");
          const subject = await proxiedView(keys);
          try {
            await subject.view.start();
            for (const step of steps) {
              if (step.kind === "put") {
                const put = direct.put(all[step.key] as string).value(step.value);
                await (step.leased ? put.lease(lease) : put);
              } else if (step.kind === "delete") {
                await direct.delete().key(all[step.key] as string);
              } else if (step.kind === "txn") {
                const ops = [
                  ...step.puts.map((i) => ({
                    request_put: { key: Buffer.from(all[i] as string), value: Buffer.from("t") },
                  })),
                  ...step.deletes
                    .filter((i) => !step.puts.includes(i))
                    .map((i) => ({ request_delete_range: { key: Buffer.from(all[i] as string) } })),
                ];
                await direct.kv.txn({ compare: [], success: ops, failure: [] });
              } else if (step.kind === "revoke") {
                await direct.leaseClient.leaseRevoke({ ID: lease });
                lease = (await direct.leaseClient.leaseGrant({ TTL: 60 })).ID;
              } else {
                // Compacted past the view while it was cut off: it must rebuild from a fresh read.
                if (step.partitioned) subject.proxy.partition();
                await direct
                  .put(all[0] as string)
                  .value("during")
                  .lease(lease);
                await direct.delete().key(all[2] as string);
                await direct.kv.compact({ revision: await revisionNow(direct), physical: true });
                if (step.partitioned) subject.proxy.heal();
              }
              // As a schedule does: its mark's revision, then the view at or after it.
              await subject.view.atLeast(await writeMark(direct, keys), { timeoutMs: 15_000 });
              const read = await readRangesPaged(direct, assignmentRanges(keys), {
                revision: subject.view.revision,
              });
              expect(readFacts(subject.view.ranges())).toEqual(readFacts(read.ranges));
            }
          } finally {
            resyncs += subject.view.resyncCount;
            await subject.close();
            await direct.leaseClient.leaseRevoke({ ID: lease }).catch(() => undefined);
          }
        },
      ),
      {
        numRuns: 12,
        // Always once: a compaction past a view cut off from etcd (the resync path).
        examples: [
          [
            [
              { kind: "put", key: 0, value: "a", leased: true },
              { kind: "txn", puts: [2, 3], deletes: [4] },
              { kind: "compact", partitioned: true },
              { kind: "revoke" },
            ],
          ],
        ],
      },
    );
    expect(resyncs).toBeGreaterThan(0);
  });
});

describe("the view's watched ranges", () => {
  it("hold every range the view reads and both marks (one in each watch), and none of the claims' keys", () => {
    const keys = new KeyLayout("probe");
    const watched = viewWatchRanges(keys);
    const watchOf = (key: Buffer) =>
      watched.findIndex(
        (range) => Buffer.compare(key, range.key) >= 0 && Buffer.compare(key, range.range_end) < 0,
      );
    for (const range of assignmentRanges(keys)) {
      const start = Buffer.from(range.key as Buffer);
      // A prefix range's last possible key: its end minus one byte, then 0xff bytes.
      const end = range.range_end === undefined ? undefined : Buffer.from(range.range_end);
      const last = end
        ? Buffer.concat([end.subarray(0, -1), Buffer.from([(end.at(-1) as number) - 1, 0xff, 0xff])])
        : start;
      expect(watchOf(start), String(range.key)).toBeGreaterThanOrEqual(0);
      expect(watchOf(last), String(range.key)).toBe(watchOf(start));
    }
    const marks = [keys.viewMark, keys.controlsMark].map((key) => watchOf(Buffer.from(key)));
    expect([...marks].sort()).toEqual([0, 1]);
    for (const claimKey of [keys.status("w", "t"), keys.runLock("t"), keys.workerSlot(3)]) {
      expect(watchOf(Buffer.from(claimKey)), claimKey).toBe(-1);
    }
  });
});

describe("readFresh (a schedule's read through the view)", () => {
  async function heldView() {
    const direct = testClient([member.hostPort]);
    const keys = new KeyLayout(uniqueRoot("fresh"));
    await direct.put(keys.worker("w1")).value("{}");
    const subject = await proxiedView(keys);
    await subject.view.start();
    // The view's watch stalls: whatever etcd sends it waits in the proxy.
    subject.proxy.hold();
    await direct.put(keys.task("w1", "t1")).value("{}");
    let fallbacks = 0;
    const source = {
      view: subject.view,
      mark: () => writeMark(direct, keys),
      read: () => {
        fallbacks++;
        return readAssignment(direct, keys, silentLogger);
      },
      logger: silentLogger,
    };
    return { subject, source, fallbacks: () => fallbacks };
  }

  it("never answers from a view older than its mark: a stalled view makes it read etcd", async () => {
    const { subject, source, fallbacks } = await heldView();
    try {
      const read = await readFresh({ ...source, timeoutMs: 300 });
      expect(read.current.get("w1")?.has("t1")).toBe(true);
      expect(fallbacks()).toBe(1);
      expect(read.source).toBe("etcd");
      expect(subject.view.revision).toBeLessThan(read.revision);
    } finally {
      subject.proxy.release();
      await subject.close();
    }
  });

  it("waits for the view to reach its mark, then answers from memory", async () => {
    const { subject, source, fallbacks } = await heldView();
    try {
      const reading = readFresh({ ...source, timeoutMs: 15_000 });
      const behind = subject.view.revision;
      subject.proxy.release();
      const read = await reading;
      expect(read.current.get("w1")?.has("t1")).toBe(true);
      expect(read.revision).toBeGreaterThan(behind);
      expect(fallbacks()).toBe(0);
      expect(read.source).toBe("view");
    } finally {
      await subject.close();
    }
  });
});

/** Records the key of every range a client requests: plain ranges and the ranges in transactions' success branch. */
function recordRanges(client: Etcd3): string[] {
  const ranged: string[] = [];
  const { kv } = client;
  const range = kv.range.bind(kv);
  const txn = kv.txn.bind(kv);
  kv.range = (...args: Parameters<typeof range>) => {
    ranged.push(String(args[0].key));
    return range(...args);
  };
  kv.txn = (...args: Parameters<typeof txn>) => {
    for (const op of args[0].success ?? []) if (op.request_range) ranged.push(String(op.request_range.key));
    return txn(...args);
  };
  return ranged;
}

describe("the leader's schedule reads its view", () => {
  it("reads no worker, task or control key from etcd, and still sees a worker that just joined", async () => {
    const direct = testClient([member.hostPort]);
    const space = { root: uniqueRoot("ranges"), endpoints: [member.hostPort] };
    const keys = new KeyLayout(space.root);
    await FakeWorker.start(direct, keys, "w1");
    const client = createEtcdClient({ etcd: [member.hostPort], dialTimeout: 2_000 });
    const ranged = recordRanges(client);
    const master = testMaster(space, () => tasks(20), { client, name: "m", rebalanceWaitMs: 600_000 });
    try {
      await master.start();
      await waitFor("the first schedule", async () => (await direct.get(keys.plan).string()) !== null);
      await FakeWorker.start(direct, keys, "w2");
      await waitFor("w2 registered", async () => (await direct.get(keys.worker("w2")).string()) !== null);
      const before = ranged.length;
      const result = await master.scheduleNow("test");
      // What it still reads: the history records to trim, and the hand-off gate's check of the moved tasks' statuses.
      const read = ranged.slice(before);
      const viewed = assignmentRanges(keys).map((range) => String(range.key));
      expect(read.filter((key) => viewed.some((start) => key.startsWith(start)))).toEqual([]);
      expect(result).toMatchObject({ workers: 2, tasks: 20, moved: 10, readSource: "view" });
    } finally {
      await master.stop();
      client.close();
    }
  });
});
