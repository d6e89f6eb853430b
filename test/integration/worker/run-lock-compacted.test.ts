import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keyLayout } from "../../../src/node/index.js";
import { refusedClaim, starting } from "../../helpers/run-lock-writer.js";
import { testClient, uniqueRoot } from "../../helpers/context.js";
import { type EtcdMember, startEtcd } from "../../helpers/etcd.js";

// An etcd of its own: the test needs the release to land at exactly the revision after the refusal.
let member: EtcdMember;
beforeAll(async () => {
  member = await startEtcd();
});
afterAll(async () => {
  await member?.destroy();
});

describe("a refused claim waiting for the run lock", () => {
  // At the release's own revision (its tombstone removed), or past it (etcd then cancels the watch).
  it.each([
    ["at the release", 0],
    ["past the release", 1],
  ])("hears of a release made right after the refusal when etcd compacted %s", async (_name, further) => {
    const client = testClient([member.hostPort]);
    const keys = keyLayout(uniqueRoot("rlock-compacted"));
    const { w1, w2, r2, refused } = await refusedClaim(client, keys);
    const refusedAt = Number((await client.get(keys.runLock("t")).exec()).header.revision);

    // The release lands at the next revision, and a compaction there removes its tombstone before
    // the waiting claim starts its watch: a watch from that revision is accepted and never sees it.
    await w1.writer.remove("t");
    const released = Number((await client.get(keys.runLock("t")).exec()).header.revision);
    expect(released).toBe(refusedAt + 1);
    let compactAt = released;
    for (let i = 0; i < further; i++)
      compactAt = Number((await client.put(keys.root).value("x").exec()).header.revision);
    await client.kv.compact({ revision: compactAt, physical: true });

    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      refused.released(new AbortController().signal).then(() => "heard"),
      new Promise((resolve) => (timer = setTimeout(() => resolve("never heard"), 5_000))),
    ]);
    clearTimeout(timer);
    expect(outcome).toBe("heard");
    expect((await w2.writer.claim("t", starting, r2)).claimed).toBe(true);
    await Promise.all([w1.lease.close(), w2.lease.close()]);
  });
});
