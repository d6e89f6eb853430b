import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DoubleBarrier } from "../../../src/barrier/index.js";
import { createEtcdClient } from "../../../src/node/client.js";
import { KeyLayout, LeaseSession } from "../../../src/node/index.js";
import { type EtcdMember, startEtcd } from "../../helpers/etcd.js";

// A gathering of n participants on an etcd of its own, whose counters then count only it.
let etcd: EtcdMember;
beforeAll(async () => {
  etcd = await startEtcd();
}, 60_000);
afterAll(async () => {
  await etcd?.destroy();
});

/** Watch events etcd has sent so far (its `etcd_debugging_mvcc_events_total`). */
async function eventsSent(): Promise<number> {
  const text = await (await fetch(`${etcd.endpoint}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith("etcd_debugging_mvcc_events_total "));
  if (!line) throw new Error("etcd reports no etcd_debugging_mvcc_events_total");
  return Number(line.split(" ")[1]);
}

describe("DoubleBarrier traffic", () => {
  it("costs a gathering of n participants a few watch events each, not n", async () => {
    const n = 40;
    const client = createEtcdClient({ etcd: [etcd.hostPort] });
    const prefix = new KeyLayout("traffic").barrierPrefix;
    try {
      const sessions = await Promise.all(
        Array.from({ length: n }, () => LeaseSession.grant(client, { ttlMs: 5_000 })),
      );
      const barriers = sessions.map(
        (session, i) => new DoubleBarrier({ client, prefix, name: `p${i}`, count: n, session }),
      );
      const before = await eventsSent();
      // They arrive one by one (each waiting while the rest come) and leave one by one.
      const entered: Array<Promise<void>> = [];
      for (const barrier of barriers) {
        entered.push(barrier.enter({ timeoutMs: 20_000 }));
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      await Promise.all(entered);
      await Promise.all(barriers.map((barrier) => barrier.leave({ timeoutMs: 20_000 })));
      const events = (await eventsSent()) - before;
      // A watch of every participant's key delivered each arrival and departure to all waiting: ~n² (here 1,600).
      expect(events).toBeLessThan(6 * n);
      expect(events).toBeGreaterThan(0);
      await Promise.all(sessions.map((session) => session.close()));
    } finally {
      client.close();
    }
  }, 60_000);
});
