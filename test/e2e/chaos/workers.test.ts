import { describe, expect, it } from "vitest";
import { Cluster } from "../../helpers/cluster.js";
import { stickinessProblems } from "../../helpers/invariants.js";

const TTL_MS = 2_000;
const REBALANCE_WAIT_MS = 200;
const timings = { ttl: `${TTL_MS}ms`, rebalanceWait: `${REBALANCE_WAIT_MS}ms` };

describe("workers failing under a running cluster (2 masters, 4 workers, real processes)", () => {
  it("a SIGKILLed worker's tasks run elsewhere within TTL + rebalance-wait + 1 s, each exactly once", async () => {
    const cluster = await Cluster.start(timings);
    const before = await cluster.waitConverged();
    const victim = cluster.node("w2");
    const orphaned = before.get("w2") ?? [];
    expect(orphaned.length).toBeGreaterThan(0);

    const killedAt = await cluster.kill("w2");
    const after = await cluster.waitConverged();

    const failoverMs = Math.max(
      ...orphaned.map((task) => (cluster.firstStart(task, killedAt, victim.pid)?.t ?? Infinity) - killedAt),
    );
    expect(failoverMs).toBeLessThan(TTL_MS + REBALANCE_WAIT_MS + 1_000);
    expect(await cluster.invariantProblems()).toEqual([]);
    expect(stickinessProblems(before, after, cluster.generatedTasks)).toEqual([]);
  });
});
