import { describe, expect, it } from "vitest";
import { Cluster, type EschedulerNode, now, unitTasks } from "../../helpers/cluster.js";
import { waitFor } from "../../helpers/context.js";

const TTL_MS = 2_000;
const timings = { ttl: `${TTL_MS}ms`, rebalanceWait: "200ms" };

async function leaderAndStandby(cluster: Cluster): Promise<[string, string]> {
  const leader = await waitFor("a leader", () => cluster.leader());
  return [leader, leader === "m1" ? "m2" : "m1"];
}

/** Resolves once `node` printed `pattern` after `offset` characters of its stdout. */
function printed(node: EschedulerNode, pattern: RegExp, offset: number, timeoutMs = 10_000) {
  return waitFor(
    `${node.name} to log ${pattern}`,
    () => pattern.test(node.process.stdout.slice(offset)),
    timeoutMs,
  );
}

describe("the leading master failing (2 masters, 4 workers, real processes)", () => {
  it("a SIGKILLed leader is replaced by the standby within TTL + 1 s, which then schedules", async () => {
    const cluster = await Cluster.start(timings);
    const [leader, standby] = await leaderAndStandby(cluster);

    const killedAt = await cluster.kill(leader);
    await waitFor(`${standby} to lead`, async () => (await cluster.leader()) === standby, 10_000);
    expect(now() - killedAt).toBeLessThan(TTL_MS + 1_000);

    cluster.setTasks(unitTasks(30));
    expect((await cluster.schedule()).status).toBe(200);
    await cluster.waitConverged();
    expect(await cluster.invariantProblems()).toEqual([]);
  });

  it("a leader paused past its TTL is replaced, and after SIGCONT writes nothing: it finds itself deposed", async () => {
    // Frequent interval schedules: a master that still believed it leads would write at once on waking.
    const cluster = await Cluster.start({ ...timings, interval: "500ms" });
    const [leader, successor] = await leaderAndStandby(cluster);

    await cluster.pause(leader);
    await waitFor(`${successor} to lead`, async () => (await cluster.leader()) === successor, 10_000);
    cluster.setTasks(unitTasks(30));
    await cluster.waitConverged();

    // Keep the successor from writing while the old leader wakes up to a changed task list: any
    // leader-only write in that window can only come from the old leader (the checker flags it).
    cluster.setTasks(unitTasks(20));
    await cluster.pause(successor);
    const sleeper = cluster.node(leader);
    const offset = sleeper.process.stdout.length;
    await cluster.resume(leader);
    await printed(sleeper, /standing by for the current leader/, offset);
    await cluster.resume(successor);

    expect(sleeper.process.stdout.slice(offset)).toMatch(/deposed; campaigning again/);
    await cluster.waitConverged();
    expect(await cluster.invariantProblems()).toEqual([]);
  });
});
