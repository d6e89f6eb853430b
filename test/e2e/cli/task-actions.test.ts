import { describe, expect, it } from "vitest";
import type { StatusReport } from "../../../src/cli/status-view.js";
import type { TimelineEntry } from "../../../src/cli/history-merge.js";
import type { ScheduleOutcome } from "../../../src/node/index.js";
import { runCli } from "../../helpers/cli.js";
import { Cluster, unitTasks } from "../../helpers/cluster.js";
import { waitFor } from "../../helpers/context.js";

/** task id → worker. */
const owners = (assignment: Map<string, string[]>) =>
  new Map([...assignment].flatMap(([worker, ids]) => ids.map((id) => [id, worker] as const)));

describe("escheduler task … and the audit trail, against real processes", () => {
  let cluster: Cluster;
  const cli = (...args: string[]) =>
    runCli([...args, "--etcd", cluster.endpoints.join(","), "--root", cluster.root]);
  const json = async <T>(...args: string[]): Promise<T> => {
    const result = await cli(...args, "--json");
    expect(result.code, result.stderr).toBe(0);
    return JSON.parse(result.stdout) as T;
  };
  const lines = (from: number) =>
    cluster
      .events()
      .filter((event) => event.t > from)
      .map((event) => `${event.event} ${event.task} ${event.worker}`);

  it("restart and move touch one task each, never run it twice, and say who and why in the history", async () => {
    // One group of five: 3 + 2, so moving one task off the fuller worker keeps the balance.
    cluster = await Cluster.start({ masters: 2, workers: 2, tasks: unitTasks(5, 1), stopDelayMs: 50 });
    const placed = owners(await cluster.waitConverged());

    const beforeRestart = performance.timeOrigin + performance.now();
    const restarted = await json<ScheduleOutcome>(
      "task",
      "restart",
      "task-00",
      "--as",
      "alice@ops",
      "--reason",
      "stuck",
    );
    expect(restarted.state).toBe("applied");
    await waitFor("task-00 started again", () =>
      lines(beforeRestart).some((line) => line.startsWith("start")),
    );
    expect(lines(beforeRestart)).toEqual([
      `stop task-00 ${placed.get("task-00")}`,
      `start task-00 ${placed.get("task-00")}`,
    ]);

    const counts = new Map<string, string[]>();
    for (const [id, worker] of placed) counts.set(worker, [...(counts.get(worker) ?? []), id]);
    const [from, fuller] = [...counts].sort((a, b) => b[1].length - a[1].length)[0];
    const to = from === "w1" ? "w2" : "w1";
    const task = fuller.find((id) => id !== "task-00") ?? "";
    const beforeMove = performance.timeOrigin + performance.now();
    const moved = await cli("task", "move", task, "--to", to, "--as", "bob@ops", "--reason", "hot host");
    expect(moved.code, moved.stderr).toBe(0);
    expect(moved.stdout.trim()).toBe(`task ${task} moving to ${to}`);
    await waitFor("the task started on its new worker", () =>
      lines(beforeMove).some((line) => line.startsWith("start")),
    );
    expect(lines(beforeMove)).toEqual([`stop ${task} ${from}`, `start ${task} ${to}`]);
    expect(await cluster.invariantProblems()).toEqual([]);

    const refused = await cli("task", "move", task, "--to", "ghost");
    expect(refused.code).toBe(1);
    expect(refused.stdout.trim()).toBe(
      `move of ${task} refused: cannot move ${task} to ghost: ghost is not registered`,
    );
    const bad = await cli("task", "move", task);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim()).toBe("escheduler: task move needs --to <worker>");

    const timeline = await json<TimelineEntry[]>("history", "--task", task);
    const actions = timeline.filter((entry) => entry.kind === "action");
    expect(actions).toEqual([
      expect.objectContaining({ action: "task move", task, to, by: "bob@ops", reason: "hot host" }),
      expect.objectContaining({ action: "task move", task, to: "ghost" }),
    ]);
    const moveSchedule = timeline.find(
      (entry) =>
        entry.kind === "schedule" && entry.moves.some((move) => move.id === task && move.from === from),
    );
    expect(moveSchedule).toMatchObject({
      moved: 1,
      reasons: [`task move ${task} → ${to} by bob@ops: hot host`],
    });
    const text = await cli("history", "--limit", "50");
    expect(text.stdout).toContain(`action   task restart  task task-00  by alice@ops: stuck`);
  });

  it("a pin holds across a schedule and a leader change; pause and cordon say who and why in status and the console", async () => {
    cluster = await Cluster.start({ masters: 2, workers: 2, tasks: unitTasks(4, 1), stopDelayMs: 20 });
    const placed = owners(await cluster.waitConverged());
    const target = placed.get("task-01") === "w1" ? "w2" : "w1";
    expect(
      await json("task", "pin", "task-01", target, "--as", "dave", "--reason", "debugging"),
    ).toMatchObject({
      pinned: { worker: target, by: "dave", reason: "debugging" },
    });
    await waitFor(
      "task-01 on its pinned worker",
      async () => owners((await cluster.state()).assignment).get("task-01") === target,
    );
    expect((await cluster.schedule()).status).toBe(200);
    const leader = await cluster.leader();
    await cluster.kill(leader ?? "m1");
    await waitFor("another leader", async () => ((await cluster.leader()) ?? leader) !== leader, 15_000);
    expect((await cluster.schedule()).status).toBe(200);
    expect(owners((await cluster.state()).assignment).get("task-01")).toBe(target);

    expect(await json("pause", "--as", "alice@ops", "--reason", "incident 4711")).toMatchObject({
      paused: { by: "alice@ops", reason: "incident 4711" },
    });
    expect(await json("cordon", "w1", "--as", "carol", "--reason", "disk")).toMatchObject({
      cordoned: { by: "carol" },
    });
    const report = await json<StatusReport>("status");
    expect(report.paused).toMatchObject({ by: "alice@ops", reason: "incident 4711" });
    expect(report.workers.find((worker) => worker.name === "w1")).toMatchObject({
      cordonBy: "carol",
      cordonReason: "disk",
    });
    expect(report.pins).toEqual([
      expect.objectContaining({ task: "task-01", worker: target, by: "dave", holds: true }),
    ]);
    const status = await cli("status");
    expect(status.stdout).toMatch(/schedules: PAUSED .* by alice@ops: incident 4711;/);
    expect(status.stdout).toMatch(/w1 cordoned .* by carol: disk/);
    expect(status.stdout).toContain(`task task-01 pinned to ${target} by dave: debugging (holds)`);

    const master = (await cluster.leader()) ?? "";
    const snapshot = async () =>
      (await (await fetch(`http://${cluster.node(master).http}/console/snapshot`)).json()) as StatusReport;
    await waitFor("the console sees the pause", async () => (await snapshot()).paused?.by === "alice@ops");
    expect((await snapshot()).pins).toEqual(report.pins);
    // A console action is recorded as the admin token's label ("console" unless configured).
    const unpin = await fetch(`http://${cluster.node(master).http}/console/actions/unpin`, {
      method: "POST",
      headers: { Authorization: `Bearer ${cluster.adminToken}`, "Content-Type": "application/json" },
      body: JSON.stringify({ task: "task-01", reason: "done" }),
    });
    expect(unpin.status).toBe(200);
    expect(await unpin.json()).toMatchObject({ removed: { worker: target } });
    const [last] = await json<TimelineEntry[]>("history", "--limit", "1");
    expect(last).toMatchObject({
      kind: "action",
      action: "task unpin",
      task: "task-01",
      by: "console",
      reason: "done",
    });
  });
});
