import type { Etcd3, IRequestOp } from "etcd3";
import { describe, expect, it, vi } from "vitest";
import { keyLayout, type LeaseSession, silentLogger } from "../../../src/node/index.js";
import { LockAudit } from "../../../src/worker/lock-audit.js";
import { RunLocks } from "../../../src/worker/run-lock.js";

/** Runs an audit loop until `done` says so (or 10 s pass); the times of its audits, from the start. */
async function auditTimes(
  options: { intervalMs: number; firstDelayMs?: number },
  done: (times: number[]) => boolean,
): Promise<number[]> {
  const audit = new LockAudit({
    client: {} as Etcd3,
    keys: keyLayout("audit-timing"),
    lease: {} as LeaseSession,
    logger: silentLogger,
    locks: () => undefined,
    reports: () => true,
    lost: () => {},
    ...options,
  });
  const start = performance.now();
  const times: number[] = [];
  vi.spyOn(audit, "once").mockImplementation(async () => {
    times.push(performance.now() - start);
  });
  const stop = new AbortController();
  const running = audit.run(stop.signal);
  while (!done(times) && performance.now() - start < 10_000) await new Promise((r) => setTimeout(r, 5));
  stop.abort();
  await running;
  return times;
}

describe("LockAudit timing", () => {
  it("audits first after firstDelayMs (a fleet's workers out of step), then every interval", async () => {
    const times = await auditTimes({ intervalMs: 1_000, firstDelayMs: 10 }, (t) => t.length >= 3);
    expect(times[0]).toBeGreaterThanOrEqual(9);
    expect(times[0]).toBeLessThan(500);
    expect((times[1] as number) - (times[0] as number)).toBeGreaterThanOrEqual(999);
    expect((times[2] as number) - (times[1] as number)).toBeGreaterThanOrEqual(999);
  });

  it("never waits longer than one interval for the first audit", async () => {
    const times = await auditTimes({ intervalMs: 20, firstDelayMs: 60_000 }, (t) => t.length >= 1);
    expect(times[0]).toBeLessThan(5_000);
  });

  it("audits first after one interval by default", async () => {
    const start = performance.now();
    const times = await auditTimes({ intervalMs: 300 }, () => performance.now() - start >= 200);
    expect(times).toEqual([]);
  });

  it("lets the event loop run while it sorts a lease's many keys, and still finds a lock no claim took", async () => {
    const keys = keyLayout("audit-slices");
    // 10,000 tasks' statuses and run locks under the lease, all this worker's but one lock near the end.
    const listed = Array.from({ length: 10_000 }, (_, i) => [
      keys.status("w1", `t${i}`),
      keys.runLock(`t${i}`),
    ]);
    listed.push([keys.runLock("forged")]);
    const txn = vi.fn(async (request: { success: unknown[] }) => ({
      header: { revision: "3" },
      responses: request.success.map(() => ({ response_txn: { succeeded: true, responses: [] } })),
    }));
    const client = {
      leaseClient: {
        leaseTimeToLive: async () => ({
          header: { revision: "2" },
          keys: listed.flat().map((key) => Buffer.from(key)),
        }),
      },
      kv: { txn },
    } as unknown as Etcd3;
    const locks = new RunLocks(client, keys, "w1", "7", silentLogger);
    // The claims of the 10,000 tasks took their locks; none took "forged".
    vi.spyOn(locks, "holds").mockImplementation((id) => id !== "forged");
    const audit = new LockAudit({
      client,
      keys,
      lease: { id: "7", active: true } as LeaseSession,
      logger: silentLogger,
      intervalMs: 1_000,
      locks: () => locks,
      reports: () => true,
      lost: () => {},
    });
    const order: string[] = [];
    setImmediate(() => order.push("another callback"));
    await audit.once();
    order.push("audit done");
    // Sorted in slices: a callback due on the next turn ran before the audit was over.
    expect(order).toEqual(["another callback", "audit done"]);
    expect(txn).not.toHaveBeenCalled();
    // Unclaimed at two audits in a row: deleted (while it has no status of this lease).
    await audit.once();
    expect(txn).toHaveBeenCalledTimes(1);
    const [request] = txn.mock.calls[0] as unknown as [{ success: IRequestOp[] }];
    const deleted = request.success.map((op) => op.request_txn?.compare?.[0]?.key?.toString());
    expect(deleted).toEqual([keys.runLock("forged")]);
  });
});
