import type { Etcd3 } from "etcd3";
import { describe, expect, it, vi } from "vitest";
import { keyLayout, type LeaseSession, silentLogger } from "../../../src/node/index.js";
import { LockAudit } from "../../../src/worker/lock-audit.js";

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
});
