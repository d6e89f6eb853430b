import type { Etcd3 } from "etcd3";
import { describe, expect, it } from "vitest";
import {
  prefixRange,
  READ_PAGE_SIZE,
  readPrefixPaged,
  readRangesPaged,
} from "../../../src/node/paged-read.js";
import { PrefixWatcher } from "../../../src/watcher/index.js";
import { testSpace } from "../../helpers/context.js";

async function putKeys(client: Etcd3, prefix: string, count: number, from = 0): Promise<void> {
  for (let start = from; start < from + count; start += 128) {
    const ops = Array.from({ length: Math.min(128, from + count - start) }, (_, i) => ({
      request_put: {
        key: Buffer.from(`${prefix}${String(start + i).padStart(6, "0")}`),
        value: Buffer.from("v"),
      },
    }));
    await client.kv.txn({ compare: [], success: ops, failure: [] });
  }
}

describe("paged reads", () => {
  it("reads every key of a prefix in pages, all at the revision of the first page", async () => {
    const { client, root } = testSpace("paged");
    const prefix = `/${root}/many/`;
    await putKeys(client, prefix, 23);
    const before = await readPrefixPaged(client, prefix);
    await putKeys(client, prefix, 5, 23);
    const paged = await readPrefixPaged(client, prefix, { pageSize: 5, revision: before.revision });
    expect(paged.kvs.map((kv) => kv.key.toString())).toEqual(before.kvs.map((kv) => kv.key.toString()));
    expect(paged.kvs).toHaveLength(23);
    expect((await readPrefixPaged(client, prefix, { pageSize: 4 })).kvs).toHaveLength(28);
  });

  it("reads several ranges at one revision and keeps a range's own limit", async () => {
    const { client, root } = testSpace("ranges");
    await putKeys(client, `/${root}/a/`, 12);
    await putKeys(client, `/${root}/b/`, 3);
    const read = await readRangesPaged(
      client,
      [
        prefixRange(`/${root}/a/`),
        prefixRange(`/${root}/b/`, { limit: 1 }),
        { key: Buffer.from(`/${root}/none`) },
      ],
      { pageSize: 5 },
    );
    expect(read.ranges.map((kvs) => kvs.length)).toEqual([12, 1, 0]);
  });

  it("gives a watcher its whole snapshot when the prefix holds more than a page", async () => {
    const { client, root } = testSpace("bigsnap");
    const prefix = `/${root}/tasks/`;
    await putKeys(client, prefix, READ_PAGE_SIZE + 100);
    const watcher = new PrefixWatcher(client, prefix);
    const snapshot = await watcher.start(new AbortController().signal);
    expect(snapshot.size).toBe(READ_PAGE_SIZE + 100);
    await watcher.close();
  });
});
