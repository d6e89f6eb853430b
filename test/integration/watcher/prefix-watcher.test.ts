import type { EventEmitter } from "node:events";
import { status as grpcStatus } from "@grpc/grpc-js";
import type { Etcd3 } from "etcd3";
import { describe, expect, it } from "vitest";
import { PrefixWatcher, type WatchChange } from "../../../src/watcher/index.js";
import { testSpace, waitFor } from "../../helpers/context.js";

/** The prefix as etcd has it now: key → value. */
async function freshRead(client: ReturnType<typeof testSpace>["client"], prefix: string) {
  return new Map(Object.entries(await client.getAll().prefix(prefix).strings()));
}

describe("PrefixWatcher", () => {
  it("starts from a snapshot and emits only later changes", async () => {
    const { client, root } = testSpace("watch-snap");
    const prefix = `/${root}/w/`;
    await client.put(`${prefix}a`).value("1");
    const watcher = new PrefixWatcher(client, prefix);
    const seen: WatchChange[] = [];
    watcher.on("change", (change) => seen.push(change));
    try {
      const snapshot = await watcher.start();
      expect([...snapshot]).toEqual([[`${prefix}a`, "1"]]);
      await client.put(`${prefix}b`).value("2");
      await client.delete().key(`${prefix}a`);
      await client.put(`/${root}/outside`).value("x");
      await waitFor("two changes", () => seen.length === 2);
      expect(seen.map(({ type, key }) => [type, key])).toEqual([
        ["put", `${prefix}b`],
        ["delete", `${prefix}a`],
      ]);
      expect(seen[1]).toMatchObject({ previous: "1", synthetic: false });
      expect([...watcher.entries]).toEqual([[`${prefix}b`, "2"]]);
    } finally {
      await watcher.close();
    }
  });

  it("keeps what storedValue keeps of each value, while its changes carry the whole value", async () => {
    const { client, root } = testSpace("watch-stored");
    const prefix = `/${root}/s/`;
    await client.put(`${prefix}a`).value("long value a");
    const watcher = new PrefixWatcher(client, prefix, { storedValue: (value) => value.slice(0, 4) });
    const seen: WatchChange[] = [];
    watcher.on("change", (change) => seen.push(change));
    try {
      expect([...(await watcher.start())]).toEqual([[`${prefix}a`, "long"]]);
      await client.put(`${prefix}b`).value("other value b");
      await client.delete().key(`${prefix}a`);
      await waitFor("two changes", () => seen.length === 2);
      expect(seen[0]).toMatchObject({ type: "put", key: `${prefix}b`, value: "other value b" });
      expect(seen[1]).toMatchObject({ type: "delete", key: `${prefix}a`, previous: "long" });
      expect([...watcher.entries]).toEqual([[`${prefix}b`, "othe"]]);
    } finally {
      await watcher.close();
    }
  });

  it("delivers a burst of 10,000 puts and deletes complete and in revision order", async () => {
    const { client, root } = testSpace("watch-burst");
    const prefix = `/${root}/burst/`;
    const watcher = new PrefixWatcher(client, prefix);
    await watcher.start();
    const received: WatchChange[] = [];
    const consumed = (async () => {
      for await (const change of watcher.changes()) received.push(change);
    })();
    // What etcd says it did: each write's response carries the revision it created.
    const expected: Array<[string, string, string | undefined, number]> = [];
    const writes: Promise<void>[] = [];
    for (let i = 0; i < 10_000; i++) {
      // Every fifth write deletes a key put by the previous batch, so it exists and each write is one change.
      if (i % 5 === 4 && i > 201) {
        const key = `${prefix}k${(i - 201) % 2_000}`;
        const previous = `v${i - 201}`;
        writes.push(
          client
            .delete()
            .key(key)
            .exec()
            .then((response) => {
              expected.push(["delete", key, previous, Number(response.header.revision)]);
            }),
        );
      } else {
        const key = `${prefix}k${i % 2_000}`;
        const value = `v${i}`;
        writes.push(
          client
            .put(key)
            .value(value)
            .exec()
            .then((response) => {
              expected.push(["put", key, value, Number(response.header.revision)]);
            }),
        );
      }
      if (writes.length === 200) await Promise.all(writes.splice(0));
    }
    await Promise.all(writes);
    try {
      await waitFor("10,000 changes", () => received.length >= 10_000, 20_000);
      expected.sort((x, y) => x[3] - y[3]);
      const summary = received.map((change) => [
        change.type,
        change.key,
        change.type === "put" ? change.value : change.previous,
        change.revision,
      ]);
      expect(summary).toEqual(expected);
      expect(received.every((change) => !change.synthetic)).toBe(true);
      expect(watcher.revision).toBe(expected.at(-1)?.[3]);
      expect(new Map(watcher.entries)).toEqual(await freshRead(client, prefix));
    } finally {
      await watcher.close();
      await consumed;
    }
    expect(received).toHaveLength(10_000);
  });

  it("ends every iterator on close and can be closed twice", async () => {
    const { client, root } = testSpace("watch-close");
    const watcher = new PrefixWatcher(client, `/${root}/`);
    await watcher.start();
    const iterator = watcher.changes();
    const pending = iterator.next();
    await watcher.close();
    await watcher.close();
    expect(await pending).toEqual({ value: undefined, done: true });
  });

  it("closed while its watch stream is still opening, it ends that stream once it opens", async () => {
    const { client, root } = testSpace("watch-close-opening");
    // The same client, recording how each watch call it opens ends (gRPC reports a status then).
    const ended: number[] = [];
    let opened = 0;
    const watchClient = {
      watch: (...args: Parameters<Etcd3["watchClient"]["watch"]>) => {
        opened++;
        const stream = client.watchClient.watch(...args);
        void stream.then((call) => {
          (call as unknown as EventEmitter).on("status", (status: { code: number }) =>
            ended.push(status.code),
          );
        });
        return stream;
      },
    };
    const recording = Object.create(client, { watchClient: { value: watchClient } }) as Etcd3;
    const watcher = new PrefixWatcher(recording, `/${root}/`);
    await watcher.start();
    // start() began opening the stream; close before it opened (as a worker skipping the barrier does).
    await watcher.close();
    expect(opened).toBe(1);
    // Left open, the call would keep the client's connection, and the process, alive after client.close().
    await waitFor("the watch call to be cancelled", () => ended.length === 1);
    expect(ended).toEqual([grpcStatus.CANCELLED]);
  });
});
