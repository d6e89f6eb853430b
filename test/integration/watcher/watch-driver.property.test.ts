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
// fragment may end inside a transaction.
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
type Step =
  | ({ kind: "put" } & Op)
  | { kind: "delete"; range: Range; key: number }
  | { kind: "txn"; puts: Op[] }
  | { kind: "burst"; range: Range; count: number }
  | { kind: "partition" }
  | { kind: "reset" }
  | { kind: "compact" };

const op = fc.record({ range: fc.constantFrom(...RANGES), key: fc.nat(3), big: fc.boolean() });
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: op.map((o) => ({ kind: "put" as const, ...o })) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("delete" as const),
      range: fc.constantFrom(...RANGES),
      key: fc.nat(3),
    }),
  },
  {
    weight: 2,
    arbitrary: fc
      .uniqueArray(op, { minLength: 1, maxLength: 4, selector: (o) => `${o.range}${o.key}` })
      .map((puts) => ({ kind: "txn" as const, puts })),
  },
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
  { weight: 1, arbitrary: fc.constant({ kind: "compact" as const }) },
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

  async delete(range: Range, key: number): Promise<void> {
    const name = this.key(range, key);
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
        try {
          await subject.prefix.watcher.start();
          await subject.ranges.watcher.start();
          const prefixFrom = subject.prefix.watcher.revision;
          const rangesFrom = subject.ranges.watcher.revision;
          for (const s of steps) {
            if (s.kind === "put") await history.txn([s]);
            else if (s.kind === "delete") await history.delete(s.range, s.key);
            else if (s.kind === "txn") await history.txn(s.puts);
            else if (s.kind === "burst") {
              for (let i = 0; i < s.count; i++)
                await history.txn(
                  [
                    { range: s.range, key: i % 4, big: true },
                    { range: s.range, key: (i + 2) % 4, big: true },
                  ],
                  true,
                );
            } else if (s.kind === "partition") subject.proxy.partition();
            else if (s.kind === "reset")
              subject.proxy.heal(); // resets every connection, mid-stream or not
            else if (history.last > compacted) {
              compacted = history.last;
              await direct.kv.compact({ revision: compacted, physical: true });
            }
          }
          subject.proxy.heal();
          // A mark in both ranges in one transaction: the merge releases a revision once both watches pass it.
          const mark = await history.txn([
            { range: "a", key: 9, big: false },
            { range: "b", key: 9, big: false },
          ]);
          await waitFor(
            "both watchers past the mark",
            () => subject.prefix.watcher.revision >= mark && subject.ranges.watcher.revision >= mark,
            20_000,
          );

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
          [[{ kind: "partition" }, { kind: "burst", range: "b", count: 10 }, { kind: "compact" }]],
        ],
      },
    );
    expect(seen.fragments).toBeGreaterThan(0);
    expect(seen.resyncs).toBeGreaterThan(0);
  }, 300_000);
});
