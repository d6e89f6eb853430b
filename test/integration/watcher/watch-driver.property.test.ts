import type { Etcd3, IWatchResponse } from "etcd3";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEtcdClient } from "../../../src/node/client.js";
import { prefixRangeEnd, readPrefixPaged } from "../../../src/node/index.js";
import { PrefixWatcher, RangesWatcher } from "../../../src/watcher/index.js";
import { testClient, uniqueRoot, waitFor } from "../../helpers/context.js";
import { type EtcdMember, startEtcd } from "../../helpers/etcd.js";
import { TcpProxy } from "../../helpers/tcp-proxy.js";

// Both watchers run one WatchDriver. Against a real etcd cut off, reset and compacted at random
// points, each must apply every event of its ranges once, in revision order, except the revisions a
// resync (a fresh read) covered, and end equal to a fresh read. etcd splits a watch response larger
// than its request limit plus 512 KiB into fragments: with a 64 KiB limit, a watch catching up after a
// cut-off on a burst of 50 kB transactions (two 25 kB values each) gets its history in pieces, and a
// fragment may end inside a transaction. A "cut" stops the stream once everything is applied, so its
// first write is at exactly applied + 1, and compacts there or at the newest: etcd accepts a watch
// from its compaction revision, and that compaction removed a deletion made there (on the driver that
// resumed from applied + 1, 9 of 10 seeds failed, after 4.7 sequences on average).
let member: EtcdMember;
beforeAll(async () => {
  member = await startEtcd({ args: ["--max-request-bytes=65536"] });
});
afterAll(async () => {
  await member?.destroy();
});

const RANGES = ["a", "b", "c"] as const; // the prefix watcher watches a/; the ranges watcher a/ and b/; nobody c/
type Range = (typeof RANGES)[number];
type Op = { range: Range; key: number; big: boolean };
type Write =
  ({ kind: "put" } & Op) | { kind: "delete"; range: Range; key: number } | { kind: "txn"; puts: Op[] };
type Step =
  | Write
  | { kind: "burst"; range: Range; count: number }
  | { kind: "partition" }
  | { kind: "reset" }
  | { kind: "compact"; at: "last" | "next" }
  // Cut off once everything is applied, `writes` (the first at exactly applied + 1), compacted.
  | { kind: "cut"; writes: Write[]; at: "last" | "next" };

const op = fc.record({ range: fc.constantFrom(...RANGES), key: fc.nat(3), big: fc.boolean() });
const put = op.map((o) => ({ kind: "put" as const, ...o }));
const del = fc.record({
  kind: fc.constant("delete" as const),
  range: fc.constantFrom(...RANGES),
  key: fc.nat(3),
});
const txn = fc
  .uniqueArray(op, { minLength: 1, maxLength: 4, selector: (o) => `${o.range}${o.key}` })
  .map((puts) => ({ kind: "txn" as const, puts }));
// "next": the revision just after the one the watchers applied (etcd accepts a watch from it, and a
// compaction there removes a deletion made there); "last": the newest.
const at = fc.constantFrom("last" as const, "next" as const);
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: put },
  { weight: 2, arbitrary: del },
  { weight: 2, arbitrary: txn },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("burst" as const),
      range: fc.constantFrom(...RANGES),
      count: fc.integer({ min: 5, max: 30 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: "partition" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "reset" as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("compact" as const), at }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("cut" as const),
      writes: fc.array(fc.oneof(put, { weight: 2, arbitrary: del }, txn), { minLength: 1, maxLength: 3 }),
      at,
    }),
  },
);

/** One event as etcd's history holds it, written the same way by the model and by both watchers. */
const line = (revision: number, type: "put" | "delete", key: string) => `${revision} ${type} ${key}`;

/**
 * The events in the order given, each run of one revision sorted: etcd orders a revision's events
 * within one watch, but a merge of several watches joins them watch by watch.
 */
function byRevision(lines: readonly string[]): string[] {
  const runs: string[][] = [];
  for (const text of lines) {
    const run = runs.at(-1);
    if (run && run[0]?.split(" ")[0] === text.split(" ")[0]) run.push(text);
    else runs.push([text]);
  }
  return runs.flatMap((run) => run.sort());
}

/** Writes through a direct client and records, from each response's revision, the events it made. */
class History {
  readonly events: { revision: number; text: string; key: string }[] = [];
  last = 0;
  /** The keys that exist now. */
  private readonly live = new Set<string>();
  private counter = 0;
  constructor(
    private readonly direct: Etcd3,
    private readonly root: string,
  ) {}

  key(range: Range, key: number): string {
    return `${this.root}${range}/k${key}`;
  }

  value(size: "small" | "big" | "bulky"): string {
    return `${++this.counter}:${"x".repeat(size === "bulky" ? 25_000 : size === "big" ? 2_000 : 0)}`;
  }

  async txn(puts: Op[], bulky = false): Promise<number> {
    const keys = puts.map((o) => this.key(o.range, o.key));
    const success = puts.map((o, i) => ({
      request_put: {
        key: Buffer.from(keys[i] as string),
        value: Buffer.from(this.value(bulky ? "bulky" : o.big ? "big" : "small")),
      },
    }));
    const revision = Number(
      (await this.direct.kv.txn({ compare: [], success, failure: [] })).header.revision,
    );
    for (const key of keys) this.record(revision, "put", key);
    return revision;
  }

  /** Deletes the `key`-th existing key of `range` (in key order, modulo their number), or k`key` when none exists. */
  async delete(range: Range, key: number): Promise<void> {
    const live = [...this.live].filter((name) => name.startsWith(`${this.root}${range}/`)).sort();
    const name = live[key % Math.max(live.length, 1)] ?? this.key(range, key);
    const response = await this.direct.delete().key(name).exec();
    if (Number(response.deleted) > 0) this.record(Number(response.header.revision), "delete", name);
  }

  /** The events of `keys` after `from`, but for those a resync covered. */
  expected(
    from: number,
    resyncs: { fromRevision: number; toRevision: number }[],
    keys: (key: string) => boolean,
  ) {
    return this.events
      .filter((event) => event.revision > from && keys(event.key))
      .filter(
        (event) => !resyncs.some((r) => event.revision > r.fromRevision && event.revision <= r.toRevision),
      )
      .map((event) => event.text);
  }

  private record(revision: number, type: "put" | "delete", key: string): void {
    this.last = revision;
    if (type === "put") this.live.add(key);
    else this.live.delete(key);
    this.events.push({ revision, text: line(revision, type, key), key });
  }
}

/** Counts the fragments every watch stream of `client` receives (a spy: the stream is etcd's own). */
function countFragments(client: Etcd3, seen: { fragments: number }): void {
  const watchClient = client.watchClient;
  const open = watchClient.watch.bind(watchClient);
  watchClient.watch = async (options) => {
    const stream = await open(options);
    stream.on("data", (response: IWatchResponse) => {
      if (response.fragment) seen.fragments++;
    });
    return stream;
  };
}

async function subjects(root: string, seen: { fragments: number }) {
  const proxy = new TcpProxy({ host: "127.0.0.1", port: Number(member.hostPort.split(":")[1]) });
  await proxy.start();
  const client = createEtcdClient({ etcd: [proxy.hostPort], dialTimeout: 2_000 });
  countFragments(client, seen);
  const prefix = new PrefixWatcher(client, `${root}a/`);
  const prefixLines: string[] = [];
  prefix.on("change", (c) => {
    if (!c.synthetic) prefixLines.push(line(c.revision, c.type, c.key));
  });
  const prefixResyncs: { fromRevision: number; toRevision: number }[] = [];
  prefix.on("resync", (event) => prefixResyncs.push(event));
  prefix.on("error", () => undefined); // the cut-offs interrupt it
  const inRanges = (key: string) => key.startsWith(`${root}a/`) || key.startsWith(`${root}b/`);
  const state = new Map<string, string>();
  const rangesLines: string[] = [];
  const rangesResyncs: { fromRevision: number; toRevision: number }[] = [];
  const ranges = new RangesWatcher<{ type: "put" | "delete"; key: string; value: string }>(
    client,
    [`${root}a/`, `${root}b/`].map((key) => ({ key: Buffer.from(key), range_end: prefixRangeEnd(key) })),
    {
      decode: (event) => ({
        type: event.type === "Put" ? "put" : "delete",
        key: event.kv.key.toString(),
        value: event.kv.value.toString(),
      }),
      snapshot: () => readPrefixPaged(client, root),
      sink: {
        replaced: (snapshot) => {
          state.clear();
          for (const kv of snapshot.kvs)
            if (inRanges(kv.key.toString())) state.set(kv.key.toString(), kv.value.toString());
        },
        applied: (revision, events) => {
          for (const event of events) {
            rangesLines.push(line(revision, event.type, event.key));
            if (event.type === "put") state.set(event.key, event.value);
            else state.delete(event.key);
          }
        },
      },
    },
  );
  ranges.on("resync", (event) => rangesResyncs.push(event));
  ranges.on("error", () => undefined);
  return {
    proxy,
    prefix: { watcher: prefix, lines: prefixLines, resyncs: prefixResyncs },
    ranges: { watcher: ranges, lines: rangesLines, resyncs: rangesResyncs, state, inRanges },
    async close() {
      await Promise.all([prefix.close(), ranges.close()]);
      client.close();
      await proxy.stop();
    },
  };
}

async function fresh(direct: Etcd3, prefix: string): Promise<Map<string, string>> {
  return new Map(Object.entries(await direct.getAll().prefix(prefix).strings()));
}

describe("WatchDriver (the stream under PrefixWatcher and RangesWatcher)", () => {
  it("applies every event once, in revision order, through random cut-offs, resets, fragments and compactions; a compaction only ever costs a resync", async () => {
    const direct = testClient([member.hostPort]);
    const seen = { fragments: 0, resyncs: 0 };
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 12 }), async (steps) => {
        const root = `/${uniqueRoot("driver")}/`;
        const history = new History(direct, root);
        await history.txn([{ range: "c", key: 0, big: false }]);
        const subject = await subjects(root, seen);
        let compacted = 0;
        let partitioned = false;
        const applied = () => Math.min(subject.prefix.watcher.revision, subject.ranges.watcher.revision);
        try {
          await subject.prefix.watcher.start();
          await subject.ranges.watcher.start();
          const prefixFrom = subject.prefix.watcher.revision;
          const rangesFrom = subject.ranges.watcher.revision;
          const write = async (w: Write) => {
            if (w.kind === "put") await history.txn([w]);
            else if (w.kind === "delete") await history.delete(w.range, w.key);
            else await history.txn(w.puts);
          };
          const compact = async (at: "last" | "next") => {
            const revision = at === "last" ? history.last : Math.min(applied() + 1, history.last);
            if (revision <= compacted) return;
            compacted = revision;
            await direct.kv.compact({ revision, physical: true });
          };
          // A mark in both ranges in one transaction (the merge releases a revision once both watches
          // pass it), then both watchers past it: everything written is applied.
          const settle = async () => {
            if (partitioned) subject.proxy.heal();
            partitioned = false;
            const mark = await history.txn([
              { range: "a", key: 9, big: false },
              { range: "b", key: 9, big: false },
            ]);
            await waitFor("both watchers past the mark", () => applied() >= mark, 20_000);
          };
          for (const s of steps) {
            if (s.kind === "put" || s.kind === "delete" || s.kind === "txn") await write(s);
            else if (s.kind === "burst") {
              for (let i = 0; i < s.count; i++)
                await history.txn(
                  [
                    { range: s.range, key: i % 4, big: true },
                    { range: s.range, key: (i + 2) % 4, big: true },
                  ],
                  true,
                );
            } else if (s.kind === "partition" || s.kind === "cut") {
              if (s.kind === "cut") await settle();
              subject.proxy.partition();
              partitioned = true;
              if (s.kind === "cut") {
                for (const w of s.writes) await write(w);
                await compact(s.at);
              }
            } else if (s.kind === "reset") {
              subject.proxy.heal(); // resets every connection, mid-stream or not
              partitioned = false;
            } else await compact(s.at);
          }
          subject.proxy.heal();
          partitioned = false;
          await settle();

          const { prefix, ranges } = subject;
          expect(byRevision(prefix.lines)).toEqual(
            byRevision(history.expected(prefixFrom, prefix.resyncs, (k) => k.startsWith(`${root}a/`))),
          );
          expect(byRevision(ranges.lines)).toEqual(
            byRevision(history.expected(rangesFrom, ranges.resyncs, ranges.inRanges)),
          );
          if (compacted === 0) expect([...prefix.resyncs, ...ranges.resyncs]).toEqual([]);
          expect(new Map(prefix.watcher.entries)).toEqual(await fresh(direct, `${root}a/`));
          const both = new Map([
            ...(await fresh(direct, `${root}a/`)),
            ...(await fresh(direct, `${root}b/`)),
          ]);
          expect(ranges.state).toEqual(both);
          seen.resyncs += prefix.resyncs.length + ranges.resyncs.length;
        } finally {
          await subject.close();
        }
      }),
      {
        numRuns: 10,
        examples: [
          // Catching up after a cut-off on more than one message holds: fragments, then live again.
          [[{ kind: "partition" }, { kind: "burst", range: "a", count: 20 }, { kind: "reset" }]],
          // Compacted past both watchers while they were cut off: each must resync, then go on.
          [
            [
              { kind: "partition" },
              { kind: "burst", range: "b", count: 10 },
              { kind: "compact", at: "last" },
            ],
          ],
          // Cut off with everything applied, a deletion at applied + 1 and a compaction there: etcd
          // accepts a watch from the compaction's revision, and the compaction removed the deletion.
          [[{ kind: "cut", writes: [{ kind: "delete", range: "a", key: 0 }], at: "next" }]],
        ],
      },
    );
    expect(seen.fragments).toBeGreaterThan(0);
    expect(seen.resyncs).toBeGreaterThan(0);
  }, 300_000);
});
