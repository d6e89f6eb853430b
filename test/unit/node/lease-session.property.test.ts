import { EventEmitter } from "node:events";
import type { Etcd3 } from "etcd3";
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { LeaseSession } from "../../../src/node/lease-session.js";

/**
 * A lease's self-fencing rule against any round-trip times of etcd (fake timers, an etcd that answers
 * each keep-alive after its own delay, in order on its stream, as etcd does). With T = ttl − margin:
 * - safe: while the session says it is alive, some keep-alive sent within the last T was confirmed
 *   (otherwise etcd may already have let the lease expire);
 * - not spurious: when it reports the lease lost, etcd had answered no keep-alive sent within the
 *   last T (a slow but answering etcd does not fence a healthy worker).
 * On the old code the second fails (defect 6): a keep-alive answered later than ttl/4 was dropped
 * with its stream, so round trips over 750 ms at ttl 3 s fenced a lease etcd kept renewing.
 */

const TTL_MS = 3_000;
const THRESHOLD_MS = 2_100; // ttl − the default 30 % margin
const STEP_MS = 20;
const HORIZON_MS = 15_000;

/** An etcd whose keep-alive streams answer request i after `rtts[i]` (cycled), never overtaking. */
function slowEtcd(rtts: number[]) {
  let sent = 0;
  /** Keep-alives etcd answered (renewing the lease), with when; `delivered` if the client still listened. */
  const answers: Array<{ sentAt: number; at: number; delivered: boolean }> = [];
  const leaseKeepAlive = async () => {
    const stream = new EventEmitter() as EventEmitter & Record<string, unknown>;
    let cancelled = false;
    let lastAnswer = 0;
    stream.write = () => {
      const sentAt = performance.now();
      const at = Math.max(sentAt + (rtts[sent++ % rtts.length] as number), lastAnswer);
      lastAnswer = at;
      setTimeout(() => {
        answers.push({ sentAt, at: performance.now(), delivered: !cancelled });
        if (!cancelled) stream.emit("data", { ID: "1", TTL: String(TTL_MS / 1000) });
      }, at - sentAt);
      return true;
    };
    stream.end = () => (cancelled = true);
    stream.cancel = () => (cancelled = true);
    return stream;
  };
  const lease = Object.assign(new EventEmitter(), {
    grant: async () => "1",
    release: () => {},
    revoke: async () => {},
  });
  const client = { lease: () => lease, leaseClient: { leaseKeepAlive } } as unknown as Etcd3;
  /** The newest send time answered by `now` (only those the client received, with `delivered`). */
  const newestAnswered = (now: number, delivered: boolean) =>
    Math.max(
      -Infinity,
      ...answers.filter((a) => a.at <= now && (a.delivered || !delivered)).map((a) => a.sentAt),
    );
  return { client, newestAnswered };
}

describe("LeaseSession against any round-trip times (property)", () => {
  beforeEach(() => {
    vi.useFakeTimers({
      toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval", "performance", "Date"],
    });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("says alive only while a keep-alive sent within ttl − margin is confirmed, and fences only by that rule", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 3_500 }), { minLength: 1, maxLength: 30 }),
        async (rtts) => {
          const etcd = slowEtcd(rtts);
          const grantedAt = performance.now();
          const session = await LeaseSession.grant(etcd.client, { ttlMs: TTL_MS });
          let lostAt: number | undefined;
          void session.lost.then(() => (lostAt = performance.now()));
          try {
            for (let now = 0; now < HORIZON_MS && lostAt === undefined; now += STEP_MS) {
              await vi.advanceTimersByTimeAsync(STEP_MS);
              const t = performance.now();
              const newest = Math.max(grantedAt, etcd.newestAnswered(t, true));
              if (session.active) expect(t - newest).toBeLessThanOrEqual(THRESHOLD_MS + STEP_MS);
            }
            if (lostAt !== undefined) {
              // Answered by etcd, whether or not the client still listened: etcd renewed the lease.
              const newest = Math.max(grantedAt, etcd.newestAnswered(lostAt, false));
              expect(lostAt - newest).toBeGreaterThanOrEqual(THRESHOLD_MS - STEP_MS);
            }
          } finally {
            await session.close();
          }
        },
      ),
      { numRuns: 60 },
    );
  }, 120_000);

  it("keeps the lease for as long as every round trip leaves room before ttl − margin", async () => {
    // Each confirmation comes at most one interval (750 ms) plus one round trip after its send.
    const rtt = fc.integer({ min: 1, max: THRESHOLD_MS - 750 - 2 * STEP_MS });
    await fc.assert(
      fc.asyncProperty(fc.array(rtt, { minLength: 1, maxLength: 30 }), async (rtts) => {
        const session = await LeaseSession.grant(slowEtcd(rtts).client, { ttlMs: TTL_MS });
        try {
          await vi.advanceTimersByTimeAsync(HORIZON_MS);
          expect(session.active).toBe(true);
        } finally {
          await session.close();
        }
      }),
      { numRuns: 40 },
    );
  }, 120_000);
});
