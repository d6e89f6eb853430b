import type { Etcd3 } from "etcd3";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { EschedulerError } from "../../../src/errors.js";
import { LeaseSession } from "../../../src/node/lease-session.js";
import { registerWorker } from "../../../src/node/registration.js";
import { slotOrder } from "../../../src/node/slot-search.js";
import { testClient, testSpace } from "../../helpers/context.js";

// Racers register at once against real etcd, with a cap, over slots some of which another live
// lease holds, some written by hand without a lease (free), and keys under the slot prefix that are
// not slots below the cap. Whatever the interleaving:
// - no slot changes hands from a live lease, and a lease holds at most one slot, below the cap;
// - every admitted racer's registration and exactly one slot are under its own lease;
// - at most one racer of a name gets in, and a name held by a live lease is refused (ERR_NAME_TAKEN);
// - ERR_WORKER_CAP only once every slot below the cap is held by a live lease.
const scenario = fc.integer({ min: 1, max: 70 }).chain((cap) =>
  fc.record({
    cap: fc.constant(cap),
    // Any slots, or a run of them in key order: windows the search reads full, with free slots elsewhere.
    held: fc.oneof(
      fc.uniqueArray(fc.nat(cap - 1), { maxLength: cap }),
      fc
        .tuple(fc.nat(cap - 1), fc.nat(cap))
        .map(([from, length]) =>
          Array.from({ length }, (_, i) => slotOrder(cap)[(from + i) % cap] as number),
        ),
    ),
    byHand: fc.uniqueArray(fc.nat(cap - 1), { maxLength: 8 }),
    beyond: fc.uniqueArray(fc.integer({ min: cap, max: cap + 20 }), { maxLength: 3 }),
    names: fc.array(fc.nat(40), { minLength: 1, maxLength: 40 }),
    nameHeld: fc.boolean(),
  }),
);

type Scenario = typeof scenario extends fc.Arbitrary<infer T> ? T : never;

const info = (name: string) => ({ name, host: "prop", pid: 1, version: "0", startedAt: "" });

async function race(s: Scenario, clients: Etcd3[]) {
  const { keys, client } = testSpace("regprop");
  const holder = await LeaseSession.grant(client, { ttlMs: 20_000 });
  const byHand = s.byHand.filter((slot) => !s.held.includes(slot));
  await Promise.all([
    ...s.held.map((slot) => client.put(keys.workerSlot(slot)).value("holder").lease(holder.id).exec()),
    ...byHand.map((slot) => client.put(keys.workerSlot(slot)).value("junk").exec()),
    ...s.beyond.map((slot) => client.put(keys.workerSlot(slot)).value("beyond").lease(holder.id).exec()),
    client.put(`${keys.workerSlotsPrefix}x`).value("junk").exec(),
    s.nameHeld ? client.put(keys.worker("n0")).value("{}").lease(holder.id).exec() : undefined,
  ]);
  const racers = await Promise.all(
    s.names.map(async (n, i) => {
      const racerClient = clients[i % clients.length] as Etcd3;
      return {
        name: `n${n}`,
        session: await LeaseSession.grant(racerClient, { ttlMs: 20_000 }),
        racerClient,
      };
    }),
  );
  const outcomes = await Promise.allSettled(
    racers.map((r) =>
      registerWorker({
        client: r.racerClient,
        keys,
        session: r.session,
        info: info(r.name),
        maxWorkers: s.cap,
      }),
    ),
  );
  const slots = (await client.getAll().prefix(keys.workerSlotsPrefix).exec()).kvs;
  const registrations = (await client.getAll().prefix(keys.workersPrefix).exec()).kvs;
  await Promise.all([holder, ...racers.map((r) => r.session)].map((session) => session.close()));
  return { keys, holder: holder.id, racers, outcomes, slots, registrations };
}

function check(s: Scenario, result: Awaited<ReturnType<typeof race>>): void {
  const { keys, holder, racers, outcomes, slots, registrations } = result;
  const slotOf = (key: Buffer) => keys.parseWorkerSlot(key.toString());
  // The live holder's slots, and the keys that are no slots below the cap, are untouched.
  const heldNow = slots.filter((kv) => kv.lease === holder).map((kv) => String(slotOf(kv.key)));
  expect(heldNow.sort()).toEqual([...s.held, ...s.beyond].map(String).sort());
  const racerSlots = slots.filter((kv) => kv.lease !== holder && kv.lease !== "0");
  expect(racerSlots.every((kv) => (slotOf(kv.key) ?? s.cap) < s.cap)).toBe(true);
  expect(new Set(racerSlots.map((kv) => kv.lease)).size).toBe(racerSlots.length);
  const registrationOf = new Map(registrations.map((kv) => [kv.lease, keys.parseWorker(kv.key.toString())]));
  const admitted = racers.filter((_, i) => outcomes[i]?.status === "fulfilled");
  for (const racer of admitted) {
    expect(registrationOf.get(racer.session.id)).toBe(racer.name);
    const own = racerSlots.filter((kv) => kv.lease === racer.session.id);
    expect(own.map((kv) => kv.value.toString())).toEqual([racer.name]);
  }
  // Nothing but admitted racers holds a slot, and a name gets in once.
  expect(racerSlots).toHaveLength(admitted.length);
  expect(new Set(admitted.map((racer) => racer.name)).size).toBe(admitted.length);
  const reasons = outcomes.flatMap((o) => (o.status === "rejected" ? [o.reason as EschedulerError] : []));
  expect(reasons.every((e) => e instanceof EschedulerError)).toBe(true);
  for (const [i, outcome] of outcomes.entries()) {
    if (outcome.status !== "rejected") continue;
    const { code } = outcome.reason as EschedulerError;
    const name = racers[i]?.name;
    if (code === "ERR_NAME_TAKEN")
      expect((s.nameHeld && name === "n0") || admitted.some((r) => r.name === name)).toBe(true);
    else expect(code).toBe("ERR_WORKER_CAP");
  }
  if (reasons.some((e) => e.code === "ERR_WORKER_CAP")) {
    const taken = new Set(slots.filter((kv) => kv.lease !== "0").map((kv) => slotOf(kv.key)));
    expect(Array.from({ length: s.cap }, (_, i) => i).filter((i) => !taken.has(i))).toEqual([]);
  }
  if (s.nameHeld) expect(admitted.some((racer) => racer.name === "n0")).toBe(false);
}

describe("worker registration under a cap, racing (property)", () => {
  it("never gives one slot to two leases, exceeds the cap, takes a held slot, or refuses while a slot is free", async () => {
    const clients = Array.from({ length: 4 }, () => testClient());
    await fc.assert(
      fc.asyncProperty(scenario, async (s) => check(s, await race(s, clients))),
      { numRuns: 40 },
    );
  }, 240_000);
});
