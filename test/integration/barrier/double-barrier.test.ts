import { afterEach, describe, expect, it } from "vitest";
import { DoubleBarrier, gatheringBarrier } from "../../../src/barrier/index.js";
import { LeaseSession } from "../../../src/node/index.js";
import { testSpace, waitFor } from "../../helpers/context.js";

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
