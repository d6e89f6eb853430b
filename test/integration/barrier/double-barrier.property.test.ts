import type { Etcd3, IKeyValue } from "etcd3";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { DoubleBarrier } from "../../../src/barrier/index.js";
import { LeaseSession } from "../../../src/node/index.js";
import { testSpace } from "../../helpers/context.js";
import { delayedReadyWrites } from "./ready-writes.js";

// Participants of one double barrier (count c) against real etcd, arriving at random moments; some
// stay, some crash (their lease revoked: their keys go at once) at a random moment before or after
// entering, some give up (abort), some write the ready key late (their writes held up to 400 ms), and
// a key written by hand without a lease may sit among the waiters. The barrier's whole history is read back from etcd afterwards. Whatever the interleaving:
// - the ready key is written only when, since it was last deleted, c participants (waiters under a
//   lease) were in at one revision; and a participant passes enter() only through a ready key written
//   after it entered;
// - a participant's leave() resolves only once, at a revision after its own departure, no
//   participant was in;
// - when at least c participants that stay entered before anyone left, every one of them passes
//   enter() and then leave() (one arriving after others left starts a round of its own).
const TTL_MS = 2_000;

const participant = fc.record({
  // Some arrive after the others may have left: a round of their own.
  arriveMs: fc.oneof(fc.nat(150), fc.integer({ min: 150, max: 600 })),
  // A participant whose writes of the ready key are slow to land (a slow network, a paused process).
  slowMs: fc.oneof(fc.constant(0), fc.nat(400)),
  fate: fc.constantFrom("stay", "stay", "crash", "abort"),
  fateMs: fc.nat(250),
  leaveMs: fc.nat(100),
});
const scenario = fc.integer({ min: 1, max: 4 }).chain((count) =>
  fc.record({
    count: fc.constant(count),
    participants: fc.array(participant, { minLength: count, maxLength: count + 2 }),
    ghost: fc.boolean(),
  }),
);
type Scenario = typeof scenario extends fc.Arbitrary<infer T> ? T : never;

interface Outcome {
  name: string;
  fate: string;
  passed: boolean;
  /** Revision read right after leave() resolved. */
  leftAt?: number;
  error?: unknown;
}

const sessions: LeaseSession[] = [];
afterEach(async () => {
  await Promise.all(sessions.splice(0).map((session) => session.close()));
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function run(
  s: Scenario,
): Promise<{ outcomes: Outcome[]; history: IKeyValue[][]; prefix: string; from: number }> {
  const { client, keys } = testSpace("barrier-prop");
  const prefix = keys.barrierPrefix;
  const from = Number((await client.get("x").exec()).header.revision);
  if (s.ghost) await client.put(`${prefix}waiters/ghost`).value("");
  const outcomes = await Promise.all(
    s.participants.map(async (spec, i): Promise<Outcome> => {
      const name = `p${i}`;
      const session = await LeaseSession.grant(client, { ttlMs: TTL_MS });
      sessions.push(session);
      const own =
        spec.slowMs > 0 ? delayedReadyWrites(client, `${prefix}ready`, () => sleep(spec.slowMs)) : client;
      const barrier = new DoubleBarrier({ client: own, prefix, name, count: s.count, session });
      const outcome: Outcome = { name, fate: spec.fate, passed: false };
      const giveUp = new AbortController();
      await sleep(spec.arriveMs);
      const fate = sleep(spec.fateMs).then(async () => {
        if (spec.fate === "crash") await session.close();
        if (spec.fate === "abort") giveUp.abort(new Error("gave up"));
      });
      try {
        await barrier.enter({ signal: giveUp.signal, timeoutMs: 3_000 });
        outcome.passed = true;
        await sleep(spec.leaveMs);
        await barrier.leave({ timeoutMs: 10_000 });
        outcome.leftAt = Number((await client.get("x").exec()).header.revision);
      } catch (error) {
        outcome.error = error;
      }
      await fate;
      return outcome;
    }),
  );
  return { outcomes, history: await historyOf(client, prefix, from), prefix, from };
}

/** Every change under `prefix` after `from`, grouped by revision (a deletion: a key-value of version 0). */
async function historyOf(client: Etcd3, prefix: string, from: number): Promise<IKeyValue[][]> {
  // A last write under the prefix: once the watch brings it, it has brought everything before it.
  const end = `${prefix}end`;
  await client.put(end).value("").exec();
  const events: IKeyValue[] = [];
  const watcher = await client
    .watch()
    .prefix(prefix)
    .startRevision(String(from + 1))
    .create();
  await new Promise<void>((resolve) => {
    watcher.on("put", (kv) => (kv.key.toString() === end ? resolve() : events.push(kv)));
    watcher.on("delete", (kv) => events.push({ ...kv, version: "0" }));
  });
  await watcher.cancel();
  const byRevision = new Map<number, IKeyValue[]>();
  for (const kv of events) {
    const revision = Number(kv.mod_revision);
    byRevision.set(revision, [...(byRevision.get(revision) ?? []), kv]);
  }
  return [...byRevision.entries()].sort(([a], [b]) => a - b).map(([, kvs]) => kvs);
}

function check(s: Scenario, result: Awaited<ReturnType<typeof run>>): void {
  const { outcomes, history, prefix } = result;
  const waiters = new Map<string, boolean>(); // key → under a lease
  const leased = () => [...waiters.values()].filter(Boolean).length;
  const entries = new Map<string, number>();
  const departures = new Map<string, number>();
  let roundMax = 0;
  const readyPuts: number[] = [];
  /** Revisions at which no participant was in. */
  const empty: number[] = [];
  for (const changes of history) {
    const revision = Number(changes[0]?.mod_revision);
    for (const kv of changes) {
      const key = kv.key.toString();
      const deleted = kv.version === "0";
      if (key.startsWith(`${prefix}waiters/`)) {
        const name = key.slice(`${prefix}waiters/`.length);
        if (deleted) {
          waiters.delete(key);
          departures.set(name, revision);
        } else {
          waiters.set(key, kv.lease !== "0");
          if (!entries.has(name)) entries.set(name, revision);
        }
      } else if (key === `${prefix}ready`) {
        if (deleted) roundMax = 0;
        else {
          expect(
            roundMax,
            `ready written at ${revision} with at most ${roundMax} of ${s.count} in`,
          ).toBeGreaterThanOrEqual(s.count);
          readyPuts.push(revision);
        }
      }
    }
    roundMax = Math.max(roundMax, leased());
    if (leased() === 0) empty.push(revision);
  }
  for (const outcome of outcomes) {
    if (!outcome.passed) continue;
    const entry = entries.get(outcome.name) as number;
    expect(
      readyPuts.some((ready) => ready > entry),
      `${outcome.name} passed without a ready key after its entry ${entry}`,
    ).toBe(true);
    if (outcome.leftAt === undefined) continue;
    const departure = departures.get(outcome.name) as number;
    expect(
      empty.some((revision) => revision >= departure && revision <= (outcome.leftAt as number)),
      `${outcome.name} left (at ${outcome.leftAt}) before the barrier was empty after its departure ${departure}`,
    ).toBe(true);
  }
  const firstDeparture = Math.min(
    ...outcomes.flatMap((o) => (o.passed ? [departures.get(o.name) ?? Infinity] : [])),
  );
  const stayers = outcomes.filter(
    (outcome) => outcome.fate === "stay" && (entries.get(outcome.name) ?? Infinity) < firstDeparture,
  );
  if (stayers.length >= s.count) {
    for (const stayer of stayers) {
      expect(stayer.error, `${stayer.name} stayed`).toBeUndefined();
      expect(stayer.leftAt, `${stayer.name} left`).toBeDefined();
    }
  }
}

describe("DoubleBarrier (property, real etcd)", () => {
  it("passes only complete gatherings, leaves only an empty barrier, and completes when enough stay", async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async (s) => check(s, await run(s))),
      { numRuns: 14, endOnFailure: true },
    );
  }, 240_000);
});
