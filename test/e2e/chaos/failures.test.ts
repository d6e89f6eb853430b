import { describe, expect, it } from "vitest";
import { plan, type Task } from "../../../src/balancer/index.js";
import { runCli } from "../../helpers/cli.js";
import type { PlanReport } from "../../../src/cli/plan.js";
import { type Cluster, CONTROLLABLE_GENERATOR, Cluster as Fleet, unitTasks } from "../../helpers/cluster.js";
import { waitFor } from "../../helpers/context.js";
import { waitForMetrics } from "../../helpers/metrics.js";

const RESTART_LIMIT = 2;
const QUARANTINE_AFTER = 2;
const REBALANCE_WAIT_MS = 200;
/** The worker's retry delays before the limit is reached (1 s doubling, at most the full step each). */
const RESTART_BUDGET_MS = 1_000;
/** Room for process scheduling on a loaded machine; the budget alone is what the design promises. */
const SLACK_MS = 4_000;

const healthy = unitTasks(6, 1);

/** A fleet of w1–w3 under one master with the escalation on (restart limit 2, quarantine after 2, auto-cordon after 1). */
async function fleet(tasks: Task[]): Promise<Cluster> {
  const cluster = await Fleet.create({ tasks, rebalanceWait: `${REBALANCE_WAIT_MS}ms`, stopDelayMs: 20 });
  await cluster.startMaster("m1", {
    args: [
      "--restart-limit",
      String(RESTART_LIMIT),
      "--restart-window",
      "1m",
      "--quarantine-after",
      String(QUARANTINE_AFTER),
      "--auto-cordon-after",
      "1",
    ],
  });
  for (const worker of ["w1", "w2", "w3"]) cluster.startWorker(worker);
  return cluster;
}

/** The worker the planner puts `task` on next to `assignment` (deterministic: the master will too). */
function placementOf(task: Task, assignment: Map<string, string[]>): string {
  const target = plan({ workers: ["w1", "w2", "w3"], tasks: [...healthy, task], current: assignment });
  expect(target.moved).toBe(0);
  const [worker] = Object.entries(target.assignment).find(([, ids]) => ids.includes(task.id)) ?? [];
  if (worker === undefined) throw new Error(`${task.id} is placed nowhere`);
  return worker;
}

const cli = (cluster: Cluster, args: string[]) =>
  runCli([...args, "--etcd", cluster.endpoints.join(","), "--root", cluster.root]);

const failedStarts = (cluster: Cluster, task: string) =>
  cluster.events().filter((event) => event.task === task && event.event === "start-failed");

describe("failure escalation (real processes)", () => {
  it("a task failing only on one worker runs elsewhere within its restart budget and the rebalance wait; nothing else moves; history says why", async () => {
    const cluster = await fleet(healthy);
    const before = await cluster.waitConverged();
    const id = "bad";
    // It fails only on the worker it is first placed on (call it the bad host).
    const host = placementOf({ id, group: "bad" }, before);
    const bad: Task = { id, group: "bad", payload: { failOn: [host] } };
    cluster.setTasks([...healthy, bad]);
    expect((await cluster.schedule()).status).toBe(200);

    const after = await cluster.waitConverged({ timeoutMs: 20_000 });

    const failures = failedStarts(cluster, id);
    expect(failures.map((event) => event.worker)).toEqual(Array(RESTART_LIMIT).fill(host));
    const started = cluster.firstStart(id, failures[0].t);
    expect(started?.worker).not.toBe(host);
    expect((started?.t ?? Infinity) - failures[0].t).toBeLessThan(
      RESTART_BUDGET_MS + REBALANCE_WAIT_MS + SLACK_MS,
    );
    for (const task of healthy) {
      const owner = (assignment: Map<string, string[]>) =>
        [...assignment].find(([, ids]) => ids.includes(task.id))?.[0];
      expect(owner(after), task.id).toBe(owner(before));
    }
    const history = await cli(cluster, ["history", "--task", id]);
    expect(history.code, history.stderr).toBe(0);
    expect(history.stdout).toMatch(
      new RegExp(`${id}: ${host} → w\\d \\(failed on ${host}: disk full on ${host}\\)`),
    );
    // The host broke a task that runs elsewhere: with --auto-cordon-after 1 it is cordoned (moving nothing).
    const cordon = await waitFor("the bad host cordoned automatically", async () =>
      cluster.client.get(cluster.keys.cordon(host)).json(),
    );
    expect(cordon).toMatchObject({
      mode: "cordon",
      by: "escheduler (auto)",
      reason: `auto: 1 task failed here that run elsewhere (${id})`,
    });
    expect((await cli(cluster, ["status"])).stdout).toContain("auto: 1 task failed here");
    expect(await cluster.invariantProblems()).toEqual([]);
  });

  it("a task failing everywhere is quarantined after exactly limit × quarantine-after starts; task reset and a payload change bring it back", async () => {
    const cluster = await fleet(healthy);
    const before = await cluster.waitConverged();
    const poison: Task = { id: "poison", group: "bad", payload: { failOn: "*" } };
    cluster.setTasks([...healthy, poison]);
    expect((await cluster.schedule()).status).toBe(200);

    const reason = await waitFor(
      "the plan lists poison as quarantined",
      async () => (await cluster.state()).view.plan?.unassignedTasks?.find((task) => task.id === "poison"),
      20_000,
    );
    expect(reason.kind).toBe("quarantined");
    expect(reason.text).toMatch(
      /^quarantined: failed on w\d: disk full on w\d; failed on w\d: disk full on w\d$/,
    );
    const starts = failedStarts(cluster, "poison");
    expect(starts).toHaveLength(RESTART_LIMIT * QUARANTINE_AFTER);
    const perWorker = new Map<string, number>();
    for (const event of starts) perWorker.set(event.worker, (perWorker.get(event.worker) ?? 0) + 1);
    expect([...perWorker.values()]).toEqual(Array(QUARANTINE_AFTER).fill(RESTART_LIMIT));
    expect(await cluster.waitConverged({ tasks: healthy })).toEqual(before);
    const status = await cli(cluster, ["status"]);
    expect(status.stdout).toContain("quarantined");
    await waitForMetrics(cluster.node("m1").http, [/^escheduler_tasks_quarantined 1$/m]);
    const planned = await runCli(
      [
        "plan",
        "--generator",
        CONTROLLABLE_GENERATOR,
        "--json",
        "--etcd",
        cluster.endpoints.join(","),
        "--root",
        cluster.root,
      ],
      { env: { ESCHEDULER_GENERATOR_FILE: cluster.generatorFile } },
    );
    expect(planned.code, planned.stderr).toBe(0);
    const report = JSON.parse(planned.stdout) as PlanReport;
    expect(report.reasons.poison?.kind).toBe("quarantined");
    expect([report.added, report.removed, report.moved]).toEqual([0, 0, 0]);

    const reset = await cli(cluster, ["task", "reset", "poison"]);
    expect(reset.code, reset.stderr).toBe(0);
    expect(reset.stdout).toContain("task poison reset");
    await waitFor(
      "poison is started again after the reset",
      async () => failedStarts(cluster, "poison").length > starts.length,
      20_000,
    );

    cluster.setTasks([...healthy, { ...poison, payload: { failOn: [] } }]);
    expect((await cluster.schedule()).status).toBe(200);
    await cluster.waitConverged({ timeoutMs: 20_000 });
    // A task failing everywhere says nothing about a host: no worker was cordoned automatically.
    expect(await cluster.client.getAll().prefix(cluster.keys.cordonsPrefix).keys()).toEqual([]);
    expect(await cluster.invariantProblems()).toEqual([]);
  });
});
