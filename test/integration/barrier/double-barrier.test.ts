import type { Etcd3 } from "etcd3";
import { afterEach, describe, expect, it } from "vitest";
import { DoubleBarrier, gatheringBarrier } from "../../../src/barrier/index.js";
import { doubleBarrierKeys, LeaseSession } from "../../../src/node/index.js";
import { testSpace, waitFor } from "../../helpers/context.js";
import { delayedReadyWrites } from "./ready-writes.js";

const sessions: LeaseSession[] = [];
afterEach(async () => {
  await Promise.all(sessions.splice(0).map((session) => session.close()));
});

/** A barrier space where each participant gets its own lease, as separate processes would. */
function barrierSpace(label: string, count: number) {
  const { client, keys } = testSpace(label);
  const prefix = keys.barrierPrefix;
  return {
    client,
    keys,
    async participant(name: string) {
      const session = await LeaseSession.grant(client, { ttlMs: 2_000 });
      sessions.push(session);
      return { name, session, barrier: new DoubleBarrier({ client, prefix, name, count, session }) };
    },
    /** Observer's view of who is in. */
    participants: () =>
      new DoubleBarrier({ client, prefix, name: "observer", count, session: sessions[0] }).participants(),
  };
}

/** Tracks whether a promise has settled, to assert that nobody passed yet. */
function track(promise: Promise<void>) {
  const state = { settled: false, error: undefined as unknown, promise };
  promise.then(
    () => {
      state.settled = true;
    },
    (error) => {
      state.settled = true;
      state.error = error;
    },
  );
  return state;
}

/** Time for watchers to deliver what was just written, when asserting that something did NOT happen. */
const OBSERVATION_MS = 300;
const observe = () => new Promise((resolve) => setTimeout(resolve, OBSERVATION_MS));

/** `client`, with its writes of the ready key held in flight until `release()`. */
function heldReadyWrites(client: Etcd3, ready: string) {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let held = 0;
  const wrapped = delayedReadyWrites(client, ready, () => {
    held++;
    return gate;
  });
  return { client: wrapped, held: () => held, release };
}

describe("DoubleBarrier", () => {
  it("lets nobody pass enter() until all N are in, then everybody", async () => {
    const space = barrierSpace("enter", 4);
    const members = await Promise.all(["a", "b", "c", "d"].map((name) => space.participant(name)));
    const early = members.slice(0, 3).map((member) => track(member.barrier.enter()));
    await waitFor("three participants in", async () => (await space.participants()).length === 3);
    await observe();
    expect(early.map((entry) => entry.settled)).toEqual([false, false, false]);

    await members[3].barrier.enter();
    await Promise.all(early.map((entry) => entry.promise));
    expect(await space.participants()).toHaveLength(4);
  });

  it("does not pass falsely when a waiting participant crashes, and completes when a replacement arrives", async () => {
    const space = barrierSpace("crash", 3);
    const [a, b, c, d] = await Promise.all(["a", "b", "c", "d"].map((name) => space.participant(name)));
    const aEntering = track(a.barrier.enter());
    const bEntering = track(b.barrier.enter());
    await waitFor("a and b in", async () => (await space.participants()).length === 2);

    await space.client.leaseClient.leaseRevoke({ ID: b.session.id }); // b crashes: its key goes with its lease
    await waitFor("b gone", async () => !(await space.participants()).includes("b"));
    const cEntering = track(c.barrier.enter());
    await waitFor("c in", async () => (await space.participants()).includes("c"));
    await observe();
    expect(aEntering.settled).toBe(false);
    expect(cEntering.settled).toBe(false);
    await bEntering.promise.catch(() => undefined);
    expect(bEntering.error).toMatchObject({ code: "ERR_LEASE_LOST" });

    await d.barrier.enter();
    await Promise.all([aEntering.promise, cEntering.promise]);
  });

  it("does not revert for those still waiting when the completing participant crashes right after passing", async () => {
    const space = barrierSpace("crash-after", 3);
    const [a, b, c] = await Promise.all(["a", "b", "c"].map((name) => space.participant(name)));
    const waiting = [a, b].map((member) => member.barrier.enter({ timeoutMs: 10_000 }));
    await waitFor("a and b in", async () => (await space.participants()).length === 2);
    await c.barrier.enter();
    await space.client.leaseClient.leaseRevoke({ ID: c.session.id });
    await Promise.all(waiting);
  });

  it("makes leave() wait until every participant has left", async () => {
    const space = barrierSpace("leave", 3);
    const [a, b, c] = await Promise.all(["a", "b", "c"].map((name) => space.participant(name)));
    await Promise.all([a.barrier.enter(), b.barrier.enter(), c.barrier.enter()]);
    const aLeaving = track(a.barrier.leave());
    const bLeaving = track(b.barrier.leave());
    await waitFor("a and b out", async () => (await space.participants()).length === 1);
    await observe();
    expect([aLeaving.settled, bLeaving.settled]).toEqual([false, false]);

    await c.barrier.leave();
    await Promise.all([aLeaving.promise, bLeaving.promise]);
    expect(await space.participants()).toEqual([]);
    expect(await space.client.getAll().prefix(space.keys.barrierPrefix).keys()).toEqual([]);
  });

  it("lets leave() complete when a participant crashes instead of leaving", async () => {
    const space = barrierSpace("leave-crash", 2);
    const [a, b] = await Promise.all(["a", "b"].map((name) => space.participant(name)));
    await Promise.all([a.barrier.enter(), b.barrier.enter()]);
    const aLeaving = a.barrier.leave({ timeoutMs: 10_000 });
    await b.session.close();
    await aLeaving;
  });

  it("times out enter() naming how many arrived of how many and who, and withdraws the participant", async () => {
    const space = barrierSpace("timeout", 4);
    const [a, b] = await Promise.all(["a", "b"].map((name) => space.participant(name)));
    const bEntering = track(b.barrier.enter());
    await waitFor("b in", async () => (await space.participants()).includes("b"));
    const aEntering = a.barrier.enter({ timeoutMs: 500 });
    await expect(aEntering).rejects.toMatchObject({
      code: "ERR_BARRIER_TIMEOUT",
      message: expect.stringMatching(/barrier .*: 2 of 4 arrived \(a, b\)/),
    });
    expect(await space.participants()).toEqual(["b"]);
    await b.session.close();
    await bEntering.promise.catch(() => undefined);
  });

  it("stops waiting when aborted", async () => {
    const space = barrierSpace("abort", 2);
    const a = await space.participant("a");
    const controller = new AbortController();
    const entering = a.barrier.enter({ signal: controller.signal });
    await waitFor("a in", async () => (await space.participants()).includes("a"));
    controller.abort(new Error("shutting down"));
    await expect(entering).rejects.toThrow("shutting down");
    expect(await space.participants()).toEqual([]);
  });

  it("ignores a ready key left by an earlier round", async () => {
    const space = barrierSpace("stale", 2);
    const [a, b, c] = await Promise.all(["a", "b", "c"].map((name) => space.participant(name)));
    await Promise.all([a.barrier.enter(), b.barrier.enter()]);
    // Everyone of that round crashes without leaving: the ready key stays behind.
    await a.session.close();
    await b.session.close();
    const cEntering = track(c.barrier.enter());
    await waitFor("c in", async () => (await space.participants()).includes("c"));
    await observe();
    expect(cEntering.settled).toBe(false);
    const d = await space.participant("d");
    await d.barrier.enter();
    await cEntering.promise;
  });

  it("opens no later round with a ready write that arrives late", async () => {
    const { client, keys } = testSpace("late-ready");
    const prefix = keys.barrierPrefix;
    const ready = doubleBarrierKeys(prefix).ready;
    // l's writes of the ready key wait in flight (a slow network, a paused process) until released.
    const slow = heldReadyWrites(client, ready);
    const member = async (name: string, memberClient = client) => {
      const session = await LeaseSession.grant(client, { ttlMs: 2_000 });
      sessions.push(session);
      return new DoubleBarrier({ client: memberClient, prefix, name, count: 2, session });
    };
    const [a, l, b, e] = [
      await member("a"),
      await member("l", slow.client),
      await member("b"),
      await member("e"),
    ];
    // Round 1: l's arrival completes the count (its ready write is held), b's too (written): all pass and leave.
    const entering = [a.enter()];
    await waitFor("a in", async () => (await a.participants()).length === 1);
    entering.push(l.enter());
    await waitFor("l's ready write in flight", () => slow.held() === 1);
    entering.push(b.enter());
    await Promise.all(entering);
    await Promise.all([a.leave(), l.leave(), b.leave()]);
    expect((await client.get(ready).exec()).kvs).toEqual([]);
    // Round 2: e alone; l's write of round 1 lands meanwhile and must not let e pass.
    const eEntering = track(e.enter({ timeoutMs: 1_500 }));
    await waitFor("e in", async () => (await e.participants()).length === 1);
    slow.release();
    await expect(eEntering.promise).rejects.toThrow("1 of 2 arrived (e)");
    expect((await client.get(ready).exec()).kvs).toEqual([]);
  });

  it("passes when it gives up while its own ready write, which completes the gathering, is in flight", async () => {
    const { client, keys } = testSpace("own-ready");
    const prefix = keys.barrierPrefix;
    const slow = heldReadyWrites(client, doubleBarrierKeys(prefix).ready);
    const member = async (name: string, memberClient: Etcd3) => {
      const session = await LeaseSession.grant(client, { ttlMs: 2_000 });
      sessions.push(session);
      return new DoubleBarrier({ client: memberClient, prefix, name, count: 2, session });
    };
    const [a, l] = [await member("a", client), await member("l", slow.client)];
    const aEntering = a.enter({ timeoutMs: 10_000 });
    await waitFor("a in", async () => (await a.participants()).length === 1);
    const giveUp = new AbortController();
    const lEntering = track(l.enter({ signal: giveUp.signal }));
    await waitFor("l's ready write in flight", () => slow.held() === 1);
    giveUp.abort(new Error("l gives up"));
    await observe();
    slow.release();
    // Its write landed with l in: the gathering it completed counts, for l as for a.
    await lEntering.promise;
    await aEntering;
    expect(await a.participants()).toEqual(["a", "l"]);
  });

  it("removes keys that are no participant, so they hold no leave and the ready key clears", async () => {
    const space = barrierSpace("strangers", 3);
    const members = await Promise.all(["a", "b", "c"].map((name) => space.participant(name)));
    await Promise.all(members.map((member) => member.barrier.enter()));
    // Written by a script once everyone is in: keys without a lease, and names no participant has.
    const waiters = `${space.keys.barrierPrefix}waiters/`;
    for (let i = 0; i < 30; i++) await space.client.put(`${waiters}junk-${i}`).value("");
    for (let i = 0; i < 5; i++) await space.client.put(`${waiters}ghost/${i}`).value("");
    const startedAt = Date.now();
    await Promise.all(members.map((member) => member.barrier.leave({ timeoutMs: 20_000 })));
    // Each leaver counts 35 or more and reads the leases by chance (16 / count) per check, one check per
    // TTL (2 s): someone reads within a few checks. Before, the leaves waited for every 8th check (~15 s).
    expect(Date.now() - startedAt).toBeLessThan(8_000);
    await waitFor(
      "the strangers removed",
      async () => (await space.client.getAll().prefix(waiters).keys()).length === 0,
    );
    await waitFor(
      "the ready key cleared",
      async () => (await space.client.get(`${space.keys.barrierPrefix}ready`).exec()).kvs.length === 0,
    );
  });

  it("gathers the expected workers plus the leader", async () => {
    const { client, keys } = testSpace("gathering");
    const names = ["leader", "w1", "w2"];
    const barriers = await Promise.all(
      names.map(async (name) => {
        const session = await LeaseSession.grant(client, { ttlMs: 2_000 });
        sessions.push(session);
        return gatheringBarrier({ client, keys, name, expectedWorkers: 2, session });
      }),
    );
    await Promise.all(barriers.map((barrier) => barrier.enter({ timeoutMs: 10_000 })));
    expect((await barriers[0].participants()).sort()).toEqual(names);
    expect(
      (await client.getAll().prefix(keys.barrierPrefix).keys()).every((key) =>
        key.startsWith(keys.barrierPrefix),
      ),
    ).toBe(true);
  });
});
