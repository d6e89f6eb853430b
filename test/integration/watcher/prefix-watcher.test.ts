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

  it("delivers a burst of 10,000 puts and deletes complete and in revision order", async () => {
    const { client, root } = testSpace("watch-burst");
    const prefix = `/${root}/burst/`;
    const watcher = new PrefixWatcher(client, prefix);
    await watcher.start();
    const iterator = watcher.changes();
    const startRevision = watcher.revision;
    const writes: Promise<unknown>[] = [];
    for (let i = 0; i < 10_000; i++) {
      // Every fifth write deletes a key put by the previous batch (so it exists): each write is one revision.
      const deletes = i % 5 === 4 && i > 201;
      writes.push(
        deletes
          ? client
              .delete()
              .key(`${prefix}k${(i - 201) % 2_000}`)
              .exec()
          : client
              .put(`${prefix}k${i % 2_000}`)
              .value(`v${i}`)
              .exec(),
      );
      if (writes.length === 200) await Promise.all(writes.splice(0));
    }
    await Promise.all(writes);
    const endRevision = Number((await client.get(`${prefix}none`).exec()).header.revision);
    try {
      const received: WatchChange[] = [];
      for await (const change of iterator) {
        received.push(change);
        if (change.revision >= endRevision) break;
      }
      // Each write is one revision: exactly one change per revision, none missing, none repeated.
      expect(endRevision - startRevision).toBe(10_000);
      expect(received.length).toBe(10_000);
      expect(received.map((change) => change.revision)).toEqual(
        Array.from({ length: received.length }, (_, i) => startRevision + 1 + i),
      );
      expect(received.filter((change) => change.type === "delete").length).toBeGreaterThan(0);
      expect(watcher.revision).toBe(endRevision);
      expect(new Map(watcher.entries)).toEqual(await freshRead(client, prefix));
    } finally {
      await watcher.close();
    }
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
});
