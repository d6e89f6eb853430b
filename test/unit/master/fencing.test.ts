import { type Etcd3, GRPCResourceExhastedError, type IRequestOp } from "etcd3";
import { describe, expect, it } from "vitest";
import { FencedWriter, leaderFence } from "../../../src/master/fencing.js";

/** A stand-in for etcd's txn endpoint that answers "too many requests" while `busy()` says so. */
function busyEtcd(busy: (call: number) => boolean) {
  let calls = 0;
  let inFlight = 0;
  const seen = { inFlightAtCall: [] as number[], refused: 0, committed: [] as string[] };
  const client = {
    kv: {
      txn: async (request: { success: IRequestOp[] }) => {
        const call = calls++;
        inFlight++;
        seen.inFlightAtCall.push(inFlight);
        await new Promise((resolve) => setTimeout(resolve, 2));
        inFlight--;
        if (busy(call)) {
          seen.refused++;
          throw new GRPCResourceExhastedError("etcdserver: too many requests");
        }
        for (const op of request.success) seen.committed.push(String(op.request_put?.key));
        return { succeeded: true, header: { revision: String(100 + call) }, responses: [] };
      },
    },
  };
  return { client: client as unknown as Etcd3, seen };
}

describe("FencedWriter under etcd back-pressure", () => {
  it("sends a refused transaction again after a pause, with fewer in flight, and finishes the schedule", async () => {
    const { client, seen } = busyEtcd((call) => call >= 2 && call < 20);
    const writer = new FencedWriter(client, leaderFence("/r/election/1", 1), { concurrency: 4 });
    const ops = Array.from({ length: 128 * 10 }, (_, i) => ({
      type: "put" as const,
      key: `k${i}`,
      value: "v",
    }));
    await writer.apply(ops);
    expect(seen.refused).toBe(18);
    expect(new Set(seen.committed).size).toBe(ops.length);
    expect(Math.max(...seen.inFlightAtCall.slice(0, 4))).toBe(4);
    // Each refusal halves what the writer sends at once: well into the busy spell, one at a time.
    expect(Math.max(...seen.inFlightAtCall.slice(10, 20))).toBe(1);
    // Once etcd accepts again, it works its way back up.
    expect(Math.max(...seen.inFlightAtCall.slice(20))).toBe(4);
  });

  it("still fails at once on an error that is not back-pressure", async () => {
    const client = {
      kv: {
        txn: async () => {
          throw new Error("permission denied");
        },
      },
    } as unknown as Etcd3;
    const writer = new FencedWriter(client, leaderFence("/r/election/1", 1));
    await expect(writer.commit([{ type: "put", key: "k", value: "v" }])).rejects.toThrow(/permission denied/);
  });
});
