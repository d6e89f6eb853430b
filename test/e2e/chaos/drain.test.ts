import { describe, expect, it } from "vitest";
import { runCli } from "../../helpers/cli.js";
import { type Cluster, Cluster as Fleet, unitTasks } from "../../helpers/cluster.js";
import { waitFor } from "../../helpers/context.js";

/** The master's default debounce: a SIGTERM that merely left would leave its tasks running nowhere this long. */
const DEFAULT_REBALANCE_WAIT = "5s";
/** How long each task takes to stop in the recording handler. */
const STOP_MS = 200;
/**
 * A generous bound on how long a drained task runs nowhere (its old owner's stop returned → its new
 * owner's start began); the target is 150 ms, and a plain leave would be the 5 s debounce.
 */
const GAP_BOUND_MS = 1_500;

/** Per task: from the end of its stop on `pid` (after `after`) to its first start elsewhere. */
function gapsAfterStop(cluster: Cluster, tasks: string[], pid: number, after: number): number[] {
  const events = cluster.events();
  return tasks.map((task) => {
    const stop = events.find((e) => e.pid === pid && e.task === task && e.event === "stop" && e.t >= after);
    const start = cluster.firstStart(task, after, pid);
    return (start?.t ?? Infinity) - (stop?.t ?? Infinity);
  });
}

describe("drain on SIGTERM (real processes, default master settings)", () => {
  it("a SIGTERMed worker drains: each task starts elsewhere right after its stop returns, well within the debounce, never twice", async () => {
    const cluster = await Fleet.start({
      rebalanceWait: DEFAULT_REBALANCE_WAIT,
      masters: 1,
      workers: 3,
      stopDelayMs: STOP_MS,
      stopTimeout: "10s",
      tasks: unitTasks(15),
    });
    const before = await cluster.waitConverged();
    const leaving = cluster.node("w3");
    const handedOver = before.get("w3") ?? [];
    expect(handedOver.length).toBeGreaterThan(0);

    const exit = await cluster.terminate("w3");
    await cluster.waitConverged({ timeoutMs: 20_000 });

    expect(exit.code).toBe(0);
    const gaps = gapsAfterStop(cluster, handedOver, leaving.pid, exit.signalledAt);
    expect(gaps.filter((gap) => !(gap >= 0 && gap < GAP_BOUND_MS))).toEqual([]);
    expect(await cluster.invariantProblems()).toEqual([]);
  });

  it("`escheduler drain` during a leader failover: the new leader hands the worker's tasks off; it stays registered, takes nothing new, never a double run", async () => {
    const cluster = await Fleet.start({ masters: 2, workers: 3, tasks: unitTasks(12), stopDelayMs: 50 });
    const before = await cluster.waitConverged();
    expect(before.get("w2")?.length).toBeGreaterThan(0);
    const leader = (await cluster.leader()) as string;
    const standby = leader === "m1" ? "m2" : "m1";

    await cluster.kill(leader);
    const drained = await runCli([
      "drain",
      "w2",
      "--etcd",
      cluster.endpoints.join(","),
      "--root",
      cluster.root,
    ]);
    expect(drained.code, drained.stderr).toBe(0);
    await waitFor("the standby leads", async () => (await cluster.leader()) === standby, 15_000);
    await waitFor(
      "w2 holds nothing",
      async () => ((await cluster.state()).assignment.get("w2") ?? []).length === 0,
      15_000,
    );
    cluster.setTasks(unitTasks(15));
    expect((await cluster.schedule()).status).toBe(200);
    const after = await cluster.waitConverged({ timeoutMs: 20_000 });

    expect(after.get("w2") ?? []).toEqual([]);
    expect((await cluster.state()).view.workers.has("w2")).toBe(true);
    expect(await cluster.invariantProblems({ drained: ["w2"] })).toEqual([]);
  });
});
