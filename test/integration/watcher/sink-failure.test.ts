import type { IEvent } from "etcd3";
import type { Etcd3 } from "etcd3";
import { beforeEach, describe, expect, it } from "vitest";
import {
  PrefixWatcher,
  RangesWatcher,
  type WatchChange,
  type PrefixSnapshot,
} from "../../../src/watcher/index.js";
import { testClient, uniqueRoot, waitFor } from "../../helpers/context.js";

let direct: Etcd3;
beforeEach(() => {
  direct = testClient();
});

/** A sink that mirrors the prefix from snapshots and events, and throws once at a key named `boom`. */
function throwingSink(prefix: string) {
  const state = new Map<string, string>();
  let throws = 1;
  const replaced = (snapshot: PrefixSnapshot) => {
    state.clear();
    for (const kv of snapshot.kvs) state.set(kv.key.toString(), kv.value.toString());
  };
  const applied = (_revision: number, events: readonly IEvent[]) => {
    for (const event of events) {
      const key = event.kv.key.toString();
      if (key === `${prefix}boom` && throws-- > 0) throw new Error("the sink failed at boom");
      if (event.type === "Put") state.set(key, event.kv.value.toString());
      else state.delete(key);
    }
  };
  return { state, sink: { replaced, applied } };
}

async function freshRead(prefix: string): Promise<Map<string, string>> {
  return new Map(Object.entries(await direct.getAll().prefix(prefix).strings()));
}

/** Writes a, then boom and c in one transaction (the sink throws part-way through its response), then d. */
async function writeThroughFailure(prefix: string, seen: () => boolean): Promise<void> {
  await direct.put(`${prefix}a`).value("1");
  await direct
    .if(`${prefix}boom`, "Version", "==", 0)
    .then(direct.put(`${prefix}boom`).value("2"), direct.put(`${prefix}c`).value("3"))
    .commit();
  await waitFor("the watcher to recover", seen);
  await direct.put(`${prefix}d`).value("4");
}

/** Writes through the failure; the sink then equals a fresh read after one resync for it. */
async function recovers(prefix: string, state: Map<string, string>, resyncs: string[]): Promise<void> {
  await writeThroughFailure(prefix, () => resyncs.length > 0);
  await waitFor("d to reach the sink", () => state.get(`${prefix}d`) === "4");
  expect(state).toEqual(await freshRead(prefix));
  expect(resyncs).toEqual(["applying a watch response failed: the sink failed at boom"]);
}

describe("a watcher whose sink throws while applying a response", () => {
  it("PrefixWatcher: the process survives, the sink is replaced from a fresh read, listeners miss nothing", async () => {
    const prefix = `/${uniqueRoot("sink-prefix")}/`;
    const { state, sink } = throwingSink(prefix);
    const watcher = new PrefixWatcher(testClient(), prefix, { sink });
    const changes: WatchChange[] = [];
    const errors: Error[] = [];
    const resyncs: string[] = [];
    watcher.on("change", (change) => changes.push(change));
    watcher.on("error", (error) => errors.push(error));
    watcher.on("resync", (event) => resyncs.push(event.reason));
    await watcher.start();
    try {
      await recovers(prefix, state, resyncs);
      expect(new Map(watcher.entries)).toEqual(await freshRead(prefix));
      expect(errors).toHaveLength(1);
      expect(errors[0]?.message).toMatch(
        /^PrefixWatcher .*failed to apply a watch response: the sink failed at boom$/,
      );
      // Every key reached the listeners once, whether live or from the resync's difference.
      const puts = changes
        .filter((change) => change.type === "put")
        .map((change) => change.key.slice(prefix.length));
      expect(puts.sort()).toEqual(["a", "boom", "c", "d"]);
    } finally {
      await watcher.close();
    }
  });

  it("RangesWatcher: the process survives and the sink is replaced from a fresh read", async () => {
    const prefix = `/${uniqueRoot("sink-ranges")}/`;
    const { state, sink } = throwingSink(prefix);
    const end = `${prefix.slice(0, -1)}0`;
    const watcher = new RangesWatcher<IEvent>(
      testClient(),
      [{ key: Buffer.from(prefix), range_end: Buffer.from(end) }],
      {
        decode: (event) => event,
        sink,
        snapshot: async () => {
          const read = await direct.getAll().prefix(prefix).exec();
          return { revision: Number(read.header.revision), kvs: read.kvs };
        },
      },
    );
    const resyncs: string[] = [];
    watcher.on("error", () => undefined);
    watcher.on("resync", (event) => resyncs.push(event.reason));
    await watcher.start();
    try {
      await recovers(prefix, state, resyncs);
    } finally {
      await watcher.close();
    }
  });
});
