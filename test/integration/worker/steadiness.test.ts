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

    flap(w1, 1);
    const marked = await waitFor("the draining mark", async () => {
      const kv = (await client.get(keys.draining("w1")).exec()).kvs[0];
      return kv && { lease: BigInt(kv.lease).toString(), value: kv.value.toString() };
    });
    const lastSuspension = performance.now();
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

  it("leaves a drain begun since its mark alone, and does not step aside when that would leave more than half the fleet draining", async () => {
    const space = testSpace("steady-guard");
    const { client, keys } = space;
    const [w1, w2, w3] = await register(space, ["w1", "w2", "w3", "w4"]);
    await client.put(keys.draining("w3")).value('{"at":"operator"}').lease(w3.id);
    const stop = new AbortController();
    const one = new LeaseSteadiness({ client, keys, name: "w1", lease: w1, logger: silentLogger });
    one.watch(stop.signal);
    flap(w1, 3);
    await waitFor("w1's mark", () => one.marked);
    // SIGTERM's drain rewrites the mark: it is the drain's now, and outlives w1's steadiness.
    await client.put(keys.draining("w1")).value('{"at":"drain"}').lease(w1.id);

    // w2 flaps too, but w1 and w3 drain already: a third of four would be more than half the fleet.
    const two = new LeaseSteadiness({ client, keys, name: "w2", lease: w2, logger: silentLogger });
    two.watch(stop.signal);
    flap(w2, 3);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(two.marked).toBe(false);
    expect(await client.get(keys.draining("w2")).string()).toBeNull();

    await waitFor("w1's window to pass", () => !one.marked, STEADY_WINDOW_TTLS * TTL_MS + 10_000);
    expect(await client.get(keys.draining("w1")).string()).toBe('{"at":"drain"}');
    stop.abort();
  });
});
