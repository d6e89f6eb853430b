import { describe, expect, it } from "vitest";
import { Cluster, unitTasks } from "../../helpers/cluster.js";
import { waitFor } from "../../helpers/context.js";

const TASKS = unitTasks(12);

describe("a leader SIGKILLed in the middle of hand-offs (2 masters, 3 workers, real processes)", () => {
  it("the moves it began finish under the standby although the standby's schedules are refused by the guard", async () => {
    // Slow stops keep the hand-offs open long enough to kill the leader in the middle of them.
    const cluster = await Cluster.create({
      ttl: "2s",
      rebalanceWait: "200ms",
      stopDelayMs: 3_000,
      tasks: TASKS,
    });
    for (const name of ["m1", "m2"]) await cluster.startMaster(name);
    for (const name of ["w1", "w2"]) cluster.startWorker(name);
    // Four node processes starting at once on a shared machine: the first convergence may take a while.
    await cluster.waitConverged({ timeoutMs: 60_000 });
    const leader = await waitFor("a leader", () => cluster.leader());
    const standby = leader === "m1" ? "m2" : "m1";

    cluster.startWorker("w3");
    await waitFor(
      "a hand-off begun (a task removed from its old worker)",
      async () =>
        (await cluster.client.getAll().prefix(cluster.keys.tasksPrefix).keys()).length < TASKS.length,
      20_000,
      5,
    );
    await cluster.kill(leader);
    // The generator drops 9 of 12 tasks: every schedule of the standby is refused by the removal guard.
    cluster.setTasks(TASKS.slice(0, 3));
    await waitFor(`${standby} to lead`, async () => (await cluster.leader()) === standby, 10_000);

    // Its plan never changes (every schedule is refused), so "converged" is read from the keys: each task
    // assigned once, and running there.
    await waitFor(
      "every task assigned once and running where assigned",
      async () => {
        const placed = await cluster.client.getAll().prefix(cluster.keys.tasksPrefix).keys();
        const running = await cluster.client.getAll().prefix(cluster.keys.statusPrefix).strings();
        const owners = placed.map((key) => cluster.keys.parseTask(key));
        return (
          owners.length === TASKS.length &&
          new Set(owners.map((owner) => owner?.taskId)).size === TASKS.length &&
          owners.every(
            (owner) =>
              owner && running[cluster.keys.status(owner.worker, owner.taskId)]?.includes('"running"'),
          ) &&
          Object.keys(running).length === TASKS.length
        );
      },
      30_000,
    );
    expect(await cluster.client.getAll().prefix(cluster.keys.movesPrefix).keys()).toEqual([]);
    // The generator recovers: one applied schedule, then every promise must hold over the whole run.
    cluster.setTasks(TASKS);
    expect((await cluster.schedule()).status).toBe(200);
    await cluster.waitConverged();
    expect(await cluster.invariantProblems()).toEqual([]);
  }, 120_000);
});
