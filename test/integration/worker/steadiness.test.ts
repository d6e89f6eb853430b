import { describe, expect, it } from "vitest";
import { EschedulerError } from "../../../src/errors.js";
import { LeaseSession, silentLogger } from "../../../src/node/index.js";
import { LeaseSteadiness, STEADY_WINDOW_TTLS } from "../../../src/worker/steadiness.js";
import { testSpace, waitFor } from "../../helpers/context.js";

const TTL_MS = 1_000;
const flap = (lease: LeaseSession, times: number) => {
  for (let i = 0; i < times; i++) {
    lease.emit("suspended", new EschedulerError("ERR_LEASE_LOST", "keep-alive overdue (test)"));
    lease.emit("resumed");
  }
};

/** Registers `names` under their own leases; returns the leases. */
async function register(space: ReturnType<typeof testSpace>, names: string[]): Promise<LeaseSession[]> {
  return Promise.all(
    names.map(async (name) => {
      const lease = await LeaseSession.grant(space.client, { ttlMs: TTL_MS });
      await space.client.put(space.keys.worker(name)).value("{}").lease(lease.id);
      return lease;
    }),
  );
}

describe("a worker whose lease flaps steps aside (LeaseSteadiness)", () => {
  it("marks itself draining under its lease at the third suspension, and clears the mark a window after the last", async () => {
    const space = testSpace("steady");
    const { client, keys } = space;
    const [w1] = await register(space, ["w1", "w2", "w3"]);
    const stop = new AbortController();
    const steadiness = new LeaseSteadiness({ client, keys, name: "w1", lease: w1, logger: silentLogger });
    steadiness.watch(stop.signal);

    flap(w1, 2);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await client.get(keys.draining("w1")).string()).toBeNull();

    const lastSuspension = performance.now();
    flap(w1, 1);
    const marked = await waitFor("the draining mark", async () => {
      const kv = (await client.get(keys.draining("w1")).exec()).kvs[0];
      return kv && { lease: BigInt(kv.lease).toString(), value: kv.value.toString() };
    });
    expect(marked.lease).toBe(BigInt(w1.id).toString());
    expect(JSON.parse(marked.value).reason).toMatch(/^unsteady lease: suspended 3 times/);

    await waitFor(
      "the mark cleared",
      async () => (await client.get(keys.draining("w1")).string()) === null,
      STEADY_WINDOW_TTLS * TTL_MS + 10_000,
    );
    expect(performance.now() - lastSuspension).toBeGreaterThanOrEqual(STEADY_WINDOW_TTLS * TTL_MS - 50);
    stop.abort();
  });

  it("leaves a drain begun since its mark alone, and at most half the registered workers step aside even when all flap at once", async () => {
    const space = testSpace("steady-guard");
    const { client, keys } = space;
    const leases = await register(space, ["w1", "w2", "w3", "w4"]);
    // A registration written by hand without a lease is not a worker the leader plans: not counted.
    await client.put(keys.worker("ghost")).value("{}");
    const stop = new AbortController();
    const watches = leases.map((lease, i) => {
      const steadiness = new LeaseSteadiness({
        client,
        keys,
        name: `w${i + 1}`,
        lease,
        logger: silentLogger,
      });
      steadiness.watch(stop.signal);
      return steadiness;
    });
    // Three of four flap at the same moment: their reads all see no mark, yet only two may step aside.
    for (const lease of leases.slice(0, 3)) flap(lease, 3);
    await waitFor("two marks", () => watches.filter((w) => w.marked).length === 2);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(watches.filter((w) => w.marked)).toHaveLength(2);
    expect(await client.getAll().prefix(keys.drainingPrefix).keys()).toHaveLength(2);

    // SIGTERM's drain rewrites a mark: it is the drain's now, and outlives that worker's steadiness.
    const first = watches.findIndex((w) => w.marked);
    const name = `w${first + 1}`;
    await client.put(keys.draining(name)).value('{"at":"drain"}').lease(leases[first].id);
    await waitFor("the window to pass", () => !watches[first].marked, STEADY_WINDOW_TTLS * TTL_MS + 10_000);
    expect(await client.get(keys.draining(name)).string()).toBe('{"at":"drain"}');
    stop.abort();
  });
});
