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
 * The grant itself takes any time (a fresh connection through a slow link costs several round trips):
 * the session is handed out at its first confirmed keep-alive, and safety counts only keep-alives
 * etcd answered, never the grant. With the clock started at the grant's request, the third property
 * failed: a grant plus one round trip over ttl − margin suspended (or lost) every new lease.
 */

const TTL_MS = 3_000;
const THRESHOLD_MS = 2_100; // ttl − the default 30 % margin
const STEP_MS = 20;
const HORIZON_MS = 15_000;

/** An etcd that grants after `grantMs` and whose keep-alive streams answer request i after `rtts[i]` (cycled), never overtaking. */
function slowEtcd(rtts: number[], grantMs = 0) {
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
    grant: () => new Promise((resolve) => setTimeout(() => resolve("1"), grantMs)),
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

/** Grants through `etcd` while the fake clock runs: the grant resolves only after etcd's answers come. */
async function grantOn(client: Etcd3): Promise<LeaseSession | Error> {
  let granted: LeaseSession | Error | undefined;
  LeaseSession.grant(client, { ttlMs: TTL_MS }).then(
    (session) => (granted = session),
    (error: Error) => (granted = error),
  );
  while (granted === undefined) await vi.advanceTimersByTimeAsync(STEP_MS);
  return granted;
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
        fc.integer({ min: 0, max: 4_000 }),
        async (rtts, grantMs) => {
          const etcd = slowEtcd(rtts, grantMs);
          const session = await grantOn(etcd.client);
          // Refused only when no keep-alive was confirmed within ttl − margin of its send, so not the first.
          if (session instanceof Error)
            return void expect(rtts[0]).toBeGreaterThanOrEqual(THRESHOLD_MS - STEP_MS);
          let lostAt: number | undefined;
          void session.lost.then(() => (lostAt = performance.now()));
          try {
            for (let now = 0; now < HORIZON_MS && lostAt === undefined; now += STEP_MS) {
              const t = performance.now();
              // Only keep-alives etcd answered count: the grant's own time is unknown, so never trusted.
              if (session.active)
                expect(t - etcd.newestAnswered(t, true)).toBeLessThanOrEqual(THRESHOLD_MS + STEP_MS);
              await vi.advanceTimersByTimeAsync(STEP_MS);
            }
            if (lostAt !== undefined) {
              // Answered by etcd, whether or not the client still listened: etcd renewed the lease.
              expect(lostAt - etcd.newestAnswered(lostAt, false)).toBeGreaterThanOrEqual(
                THRESHOLD_MS - STEP_MS,
              );
            }
          } finally {
            await session.close();
          }
        },
      ),
      { numRuns: 60 },
    );
  }, 120_000);

  it("keeps the lease, however long the grant took, for as long as every round trip leaves room before ttl − margin", async () => {
    // Each confirmation comes at most one interval (ttl/4, 750 ms) plus one round trip after its send.
    const rtt = fc.integer({ min: 1, max: THRESHOLD_MS - TTL_MS / 4 - 2 * STEP_MS });
    await fc.assert(
      fc.asyncProperty(
        fc.array(rtt, { minLength: 1, maxLength: 30 }),
        fc.integer({ min: 0, max: 4_000 }),
        async (rtts, grantMs) => {
          const session = await grantOn(slowEtcd(rtts, grantMs).client);
          if (session instanceof Error) throw session;
          try {
            await vi.advanceTimersByTimeAsync(HORIZON_MS);
            expect(session.active).toBe(true);
          } finally {
            await session.close();
          }
        },
      ),
      { numRuns: 40 },
    );
  }, 120_000);
});
