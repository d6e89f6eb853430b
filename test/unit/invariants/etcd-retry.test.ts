import { GRPCUnavailableError } from "etcd3";
import { describe, expect, it } from "vitest";
import { isTransientEtcdError, withEtcdRetry } from "../../invariants/etcd-retry.js";

/** A call failing with each of `errors` in turn, then answering `value`. */
function failing<T>(errors: unknown[], value: T) {
  let calls = 0;
  const call = async () => {
    calls++;
    if (calls <= errors.length) throw errors[calls - 1];
    return value;
  };
  return { call, calls: () => calls };
}

describe("withEtcdRetry (the soak harness's etcd calls)", () => {
  it("tries again through a leader change, no leader, unavailable, a deadline and a dropped proposal, and answers", async () => {
    const errors = [
      new GRPCUnavailableError("14 UNAVAILABLE: etcdserver: leader changed"),
      new Error("etcdserver: no leader"),
      new Error("4 DEADLINE_EXCEEDED: Deadline exceeded"),
      new Error("etcdserver: request timed out"),
      // What etcd 3.4 answers a write proposed while its leadership moves (seen in CI during a moveLeader).
      new Error("2 UNKNOWN: raft proposal dropped"),
    ];
    const { call, calls } = failing(errors, 42);
    const retries: number[] = [];
    const answer = await withEtcdRetry(call, { initialDelayMs: 1, onRetry: (_, n) => retries.push(n) });
    expect(answer).toBe(42);
    expect(calls()).toBe(6);
    expect(retries).toEqual([1, 2, 3, 4, 5]);
  });

  it("gives up with the last transient error once its bound has passed", async () => {
    const leaderChanged = new Error("etcdserver: leader changed");
    const from = Date.now();
    const { call, calls } = failing(
      Array.from({ length: 1_000 }, () => leaderChanged),
      0,
    );
    await expect(withEtcdRetry(call, { timeoutMs: 200, initialDelayMs: 10, maxDelayMs: 20 })).rejects.toBe(
      leaderChanged,
    );
    expect(Date.now() - from).toBeLessThan(1_000);
    expect(calls()).toBeGreaterThan(2);
  });

  it("rethrows any other error at once (a harness bug is not waited out)", async () => {
    const bug = new TypeError("Cannot read properties of undefined");
    const { call, calls } = failing([bug], 0);
    await expect(withEtcdRetry(call, { initialDelayMs: 1 })).rejects.toBe(bug);
    expect(calls()).toBe(1);
    expect(isTransientEtcdError(new Error("history watch did not reach revision 9"))).toBe(false);
    expect(isTransientEtcdError(new Error("etcdserver: key not found"))).toBe(false);
  });
});
