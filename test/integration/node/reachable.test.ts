import { EtcdPermissionDeniedError, GRPCDeadlineExceededError, GRPCUnavailableError } from "etcd3";
import { describe, expect, it } from "vitest";
import { ensureReachable } from "../../../src/node/client.js";
import { testSpace } from "../../helpers/context.js";

/** The first `failures` attempts throw what `fail` makes; later ones read etcd for real. */
function flaky(
  client: ReturnType<typeof testSpace>["client"],
  key: string,
  failures: number,
  fail: () => Error,
) {
  const calls: number[] = [];
  const attempt = async (deadline: number) => {
    calls.push(deadline);
    if (calls.length <= failures) throw fail();
    await client.get(key).options({ deadline }).exists();
  };
  return { attempt, calls };
}

describe("ensureReachable (start-up check of etcd)", () => {
  it("rides out a leader election: transient errors are retried within the dial timeout", async () => {
    const { client, endpoints, keys } = testSpace("reach");
    const leaderChanged = flaky(
      client,
      keys.plan,
      2,
      () => new GRPCUnavailableError("14 UNAVAILABLE: etcdserver: leader changed"),
    );
    await ensureReachable(client, endpoints, 3_000, keys.plan, leaderChanged.attempt);
    expect(leaderChanged.calls).toHaveLength(3);
    const overdue = flaky(
      client,
      keys.plan,
      1,
      () => new GRPCDeadlineExceededError("4 DEADLINE_EXCEEDED: Deadline exceeded"),
    );
    await ensureReachable(client, endpoints, 3_000, keys.plan, overdue.attempt);
    expect(overdue.calls).toHaveLength(2);
  });

  it("fails at once, with the reason, on an error that retrying cannot cure (permission, TLS)", async () => {
    const { client, endpoints, keys } = testSpace("reach");
    for (const fail of [
      () => new EtcdPermissionDeniedError("etcdserver: permission denied"),
      () =>
        new GRPCUnavailableError(
          "14 UNAVAILABLE: No connection established. Last error: SSL routines::wrong version number",
        ),
    ]) {
      const denied = flaky(client, keys.plan, 1, fail);
      const started = Date.now();
      const failure = ensureReachable(client, endpoints, 5_000, keys.plan, denied.attempt);
      await expect(failure).rejects.toMatchObject({ code: "ERR_ETCD_UNREACHABLE" });
      await expect(failure).rejects.toThrow(/cannot use etcd at \S+: (?!no answer).*(permission denied|SSL)/);
      expect(denied.calls).toHaveLength(1);
      expect(Date.now() - started).toBeLessThan(1_000);
    }
  });

  it("gives up after the dial timeout with the last reason when etcd stays unavailable", async () => {
    const { client, endpoints, keys } = testSpace("reach");
    const down = flaky(
      client,
      keys.plan,
      Number.POSITIVE_INFINITY,
      () => new GRPCUnavailableError("14 UNAVAILABLE: etcdserver: no leader"),
    );
    const started = Date.now();
    await expect(ensureReachable(client, endpoints, 600, keys.plan, down.attempt)).rejects.toThrow(
      /cannot use etcd at .*: no answer for 600ms \(--dial-timeout\): .*no leader/,
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(down.calls.length).toBeGreaterThan(1);
  });
});
