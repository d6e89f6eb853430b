import { describe, expect, it } from "vitest";
import { Cluster, now, unitTasks } from "../../helpers/cluster.js";
import { stickinessProblems, type TaskEvent } from "../../invariants/index.js";
import { TcpProxy } from "../../helpers/tcp-proxy.js";

const TTL_MS = 2_000;
const REBALANCE_WAIT_MS = 200;
/** How soon a resumed worker must have stopped the tasks it lost while paused. */
const WAKE_GRACE_MS = 500;
const timings = { ttl: `${TTL_MS}ms`, rebalanceWait: `${REBALANCE_WAIT_MS}ms` };

/** The latest time, over `tasks`, of the first start after `after` on another process. */
function slowestMove(cluster: Cluster, tasks: string[], after: number, fromPid: number): number {
  return Math.max(...tasks.map((task) => (cluster.firstStart(task, after, fromPid)?.t ?? Infinity) - after));
}

/** `pid`'s stop of each task, after `after`. */
function stopsOf(
  cluster: Cluster,
  pid: number,
  tasks: string[],
  after: number,
): Array<TaskEvent | undefined> {
  const events = cluster.events();
  return tasks.map((task) =>
    events.find((e) => e.pid === pid && e.task === task && e.event === "stop" && e.t >= after),
  );
}

describe("workers failing under a running cluster (2 masters, 4 workers, real processes)", () => {
  it("a SIGKILLed worker's tasks run elsewhere within TTL + rebalance-wait + 1 s, each exactly once", async () => {
    const cluster = await Cluster.start(timings);
    const before = await cluster.waitConverged();
    const victim = cluster.node("w2");
    const orphaned = before.get("w2") ?? [];
    expect(orphaned.length).toBeGreaterThan(0);

    const killedAt = await cluster.kill("w2");
    const after = await cluster.waitConverged();

    expect(slowestMove(cluster, orphaned, killedAt, victim.pid)).toBeLessThan(
      TTL_MS + REBALANCE_WAIT_MS + 1_000,
    );
    expect(await cluster.invariantProblems()).toEqual([]);
    expect(stickinessProblems(before, after, cluster.generatedTasks)).toEqual([]);
  });

  it("a SIGTERMed worker stops its tasks, exits 0, and they move at once instead of after the TTL", async () => {
    const cluster = await Cluster.start(timings);
    const before = await cluster.waitConverged();
    const leaving = cluster.node("w3");
    const handedOver = before.get("w3") ?? [];
    expect(handedOver.length).toBeGreaterThan(0);

    const exit = await cluster.terminate("w3");
    const after = await cluster.waitConverged();

    expect(exit.code).toBe(0);
    expect(stopsOf(cluster, leaving.pid, handedOver, exit.signalledAt)).not.toContain(undefined);
    expect(slowestMove(cluster, handedOver, exit.signalledAt, leaving.pid)).toBeLessThan(TTL_MS);
    expect(await cluster.invariantProblems()).toEqual([]);
    expect(stickinessProblems(before, after, cluster.generatedTasks)).toEqual([]);
  });

  it("a SIGTERMed worker whose stops overrun --stop-timeout keeps its tasks until they return: none starts elsewhere sooner", async () => {
    const cluster = await Cluster.start({
      ...timings,
      handoff: "wait",
      stopTimeout: "1s",
      stopDelayMs: 3_000,
      masters: 1,
      workers: 2,
      tasks: unitTasks(4),
    });
    const before = await cluster.waitConverged();
    const leaving = cluster.node("w1");
    const handedOver = before.get("w1") ?? [];
    expect(handedOver.length).toBeGreaterThan(0);

    const exit = await cluster.terminate("w1");
    await cluster.waitConverged();

    expect(exit.code).toBe(0);
    // Recorded only when a stop returns: the process exited after every stop, not at its timeout.
    const stops = stopsOf(cluster, leaving.pid, handedOver, exit.signalledAt);
    expect(stops).not.toContain(undefined);
    const startedTooSoon = handedOver.filter((task, i) => {
      const start = cluster.firstStart(task, exit.signalledAt, leaving.pid);
      return start === undefined || start.t < (stops[i]?.t ?? Infinity);
    });
    expect(startedTooSoon).toEqual([]);
    expect(await cluster.invariantProblems()).toEqual([]);
  });

  it("a worker paused past its TTL stops its stale tasks at once on SIGCONT, rejoins and gets its share back", async () => {
    const cluster = await Cluster.start({ ...timings, wakeGraceMs: WAKE_GRACE_MS });
    const before = await cluster.waitConverged();
    const sleeper = cluster.node("w1");
    const stale = before.get("w1") ?? [];

    await cluster.pause("w1");
    const whileAway = await cluster.waitConverged(); // its lease expired, its tasks run on the others
    const resumedAt = await cluster.resume("w1");
    const back = await cluster.waitConverged();

    const stops = stopsOf(cluster, sleeper.pid, stale, resumedAt);
    expect(stops).not.toContain(undefined);
    expect(Math.max(...stops.map((stop) => (stop?.t ?? Infinity) - resumedAt))).toBeLessThan(WAKE_GRACE_MS);
    expect(back.get("w1")?.length).toBeGreaterThan(0);
    expect(cluster.node("w1").pid).toBe(sleeper.pid); // the same process rejoined
    expect(await cluster.invariantProblems()).toEqual([]);
    expect(stickinessProblems(before, whileAway, cluster.generatedTasks)).toEqual([]);
    expect(stickinessProblems(whileAway, back, cluster.generatedTasks)).toEqual([]);
  });

  it("a worker cut off from etcd (connections open, nothing passes) stops its tasks before its lease can expire, and gets its share back after healing", async () => {
    const cluster = await Cluster.create(timings);
    const [host, port] = cluster.endpoints[0].split(":");
    const proxy = new TcpProxy({ host, port: Number(port) });
    await proxy.start();
    try {
      for (const name of ["m1", "m2"]) await cluster.startMaster(name);
      for (const name of ["w1", "w2", "w3"]) cluster.startWorker(name);
      const island = cluster.startWorker("w4", { etcd: [proxy.hostPort] });
      const before = await cluster.waitConverged();
      const cut = before.get("w4") ?? [];
      expect(cut.length).toBeGreaterThan(0);

      const partitionedAt = now();
      proxy.partition();
      const whileCut = await cluster.waitConverged({ workers: ["w1", "w2", "w3"] });

      // Self-fencing: every task stopped on w4 before etcd expired its lease (which lets the master move them).
      const stops = stopsOf(cluster, island.pid, cut, partitionedAt);
      expect(stops).not.toContain(undefined);
      const lastStop = Math.max(...stops.map((stop) => stop?.t ?? Infinity));
      const expired = cluster.history.events.find(
        (event) => event.type === "delete" && event.key === cluster.keys.worker("w4"),
      );
      expect(expired).toBeDefined();
      expect(lastStop).toBeLessThan(expired?.seenAt ?? 0);
      expect(lastStop - partitionedAt).toBeLessThan(TTL_MS);

      proxy.heal();
      const healed = await cluster.waitConverged();
      expect(healed.get("w4")?.length).toBeGreaterThan(0);
      expect(await cluster.invariantProblems()).toEqual([]);
      expect(stickinessProblems(before, whileCut, cluster.generatedTasks)).toEqual([]);
      expect(stickinessProblems(whileCut, healed, cluster.generatedTasks)).toEqual([]);
    } finally {
      await cluster.close();
      await proxy.stop();
    }
  });
});
