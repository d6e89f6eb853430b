import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { PlanReport } from "../../../src/cli/plan.js";
import type { StatusReport } from "../../../src/cli/status-view.js";
import { keyLayout } from "../../../src/node/index.js";
import { cordon, type HistoryEntry } from "../../../src/operator/index.js";
import { runCli } from "../../helpers/cli.js";
import { CONTROLLABLE_GENERATOR, Cluster, unitTasks } from "../../helpers/cluster.js";
import { etcdEndpoints, testClient, uniqueRoot, waitFor } from "../../helpers/context.js";

/** Tasks per worker from the task keys. */
const counts = (assignment: Map<string, string[]>) =>
  Object.fromEntries([...assignment].map(([worker, ids]) => [worker, ids.length]));

// Each test runs its own cluster (the helper closes clusters after every test).
describe("operator commands against real processes", () => {
  let cluster: Cluster;
  const startCluster = async (masters: number) => {
    cluster = await Cluster.start({ masters, workers: 2, tasks: unitTasks(8), stopDelayMs: 20 });
  };
  const cli = (...args: string[]) =>
    runCli([...args, "--etcd", cluster.endpoints.join(","), "--root", cluster.root], {
      env: { ESCHEDULER_GENERATOR_FILE: cluster.generatorFile },
    });
  const json = async <T>(...args: string[]): Promise<T> => {
    const result = await cli(...args, "--json");
    expect(result.code, result.stderr).toBe(0);
    return JSON.parse(result.stdout) as T;
  };
  const http = async (node: string, path: string) => {
    const response = await fetch(`http://${cluster.node(node).http}${path}`);
    return { status: response.status, body: await response.text() };
  };
  const assignment = async () => (await cluster.state()).assignment;
  /** Waits until the workers hold these many tasks each (paced moves done) and all of them run. */
  const settledAt = async (expected: Record<string, number>) => {
    await waitFor(
      `tasks per worker ${JSON.stringify(expected)}`,
      async () => {
        const now = counts(await assignment());
        return Object.entries(expected).every(([worker, n]) => now[worker] === n);
      },
      15_000,
    );
    await cluster.waitConverged();
  };

  it("bad input and a missing leader: one line on stderr, exit 2", async () => {
    const connection = ["--etcd", etcdEndpoints().join(","), "--root", uniqueRoot("operator-bad")];
    const cases: Array<[string[], RegExp]> = [
      [["cordon", "a/b"], /invalid worker name "a\/b"/],
      [["drain", "ghost"], /unknown worker "ghost"/],
      [["uncordon", "ghost"], /unknown worker "ghost"/],
      [["history", "--limit", "0"], /--limit/],
      [["plan", "--generator", "/no/such/module.mjs"], /module/],
      [["plan"], /--generator/],
    ];
    const results = await Promise.all(cases.map(([args]) => runCli([...args, ...connection])));
    for (const [i, [args, message]] of cases.entries()) {
      const result = results[i];
      expect({ args, code: result.code }).toEqual({ args, code: 2 });
      expect(result.stderr).toMatch(message);
      expect(result.stderr.trim().split("\n")).toHaveLength(1);
    }
    const lonely = await runCli(["schedule", "--timeout", "300ms", ...connection]);
    expect(lonely.code).toBe(2);
    expect(lonely.stderr).toMatch(/no leader answered the schedule request within 300ms/);
  });

  it("drain --wait returns once the worker holds nothing, or exits 1 after --timeout; state-changing commands answer --json", async () => {
    await startCluster(1);
    await cluster.waitConverged();
    const paused = await json<{ paused: { reason?: string } }>("pause", "--reason", "hold");
    expect(paused.paused.reason).toBe("hold");
    const held = counts(await assignment()).w2;
    const stuck = await cli("drain", "w2", "--wait", "--timeout", "1s", "--json");
    expect(stuck.code, stuck.stderr).toBe(1);
    expect(JSON.parse(stuck.stdout)).toMatchObject({
      draining: { mode: "drain" },
      drained: false,
      holding: held,
    });
    expect(await json("uncordon", "w2")).toMatchObject({ removed: { mode: "drain" } });
    expect(await json("resume")).toEqual({ resumed: true });

    const drained = await json<{ drained: boolean; holding: number }>(
      "drain",
      "w1",
      "--wait",
      "--timeout",
      "20s",
    );
    expect(drained).toMatchObject({ draining: { mode: "drain" }, drained: true, holding: 0 });
    // Nothing assigned and nothing stopping: the status keys went with the stops.
    expect((await assignment()).get("w1") ?? []).toEqual([]);
    const statuses = await testClient().getAll().prefix(cluster.keys.workerStatusPrefix("w1")).keys();
    expect(statuses).toEqual([]);
    expect(await json("cordon", "w1", "--reason", "still")).toMatchObject({ cordoned: { mode: "cordon" } });
    expect(await json("schedule")).toMatchObject({ state: "applied" });
  });

  it("plan writes nothing and plans around a cordon (a root with workers and an assignment but no master)", async () => {
    const root = uniqueRoot("operator-plan");
    const keys = keyLayout(root);
    const client = testClient();
    // Registrations live under a worker's lease (one without is not trusted).
    const { ID: lease } = await client.leaseClient.leaseGrant({ TTL: 60 });
    for (const worker of ["w1", "w2"]) {
      const value = JSON.stringify({ name: worker, host: "h", pid: 1, version: "v", startedAt: "" });
      await client.kv.put({ key: Buffer.from(keys.worker(worker)), value: Buffer.from(value), lease });
    }
    for (const id of ["t0", "t1", "t2", "t3"])
      await client.put(keys.task("w1", id)).value(JSON.stringify({ id }));
    await cordon(client, root, "w2");
    const dir = mkdtempSync(join(tmpdir(), "escheduler-plan-"));
    const generatorFile = join(dir, "generator.json");
    writeFileSync(
      generatorFile,
      JSON.stringify({ tasks: ["t0", "t1", "t2", "t3", "t4", "t5"].map((id) => ({ id })) }),
    );
    const snapshot = async () =>
      (await client.getAll().prefix(keys.prefix).exec()).kvs.map(
        (kv) => `${kv.key.toString()}@${kv.mod_revision}`,
      );
    const before = await snapshot();
    const args = [
      "plan",
      "--generator",
      CONTROLLABLE_GENERATOR,
      "--etcd",
      etcdEndpoints().join(","),
      "--root",
      root,
    ];
    const env = { ESCHEDULER_GENERATOR_FILE: generatorFile };
    const [asJson, asText] = await Promise.all([runCli([...args, "--json"], { env }), runCli(args, { env })]);
    expect(asJson.code, asJson.stderr).toBe(0);
    const report = JSON.parse(asJson.stdout) as PlanReport;
    expect(report.workers).toEqual([
      { name: "w1", tasks: 6, added: 2, removed: 0, movedIn: 0, movedOut: 0, groups: { "": 6 } },
      { name: "w2", mode: "cordon", tasks: 0, added: 0, removed: 0, movedIn: 0, movedOut: 0, groups: {} },
    ]);
    expect(report).toMatchObject({ tasks: 6, added: 2, removed: 0, moved: 0, unassigned: [] });
    expect(asText.stdout).toMatch(/^w2 +cordon +0 /m);
    expect(await snapshot()).toEqual(before);
    rmSync(dir, { recursive: true, force: true });
  });

  it("plan prints exactly what the next schedule then does; drain (across a leader failover), cordon and uncordon", async () => {
    await startCluster(2);
    const first = (await cluster.leader()) as string;
    const second = first === "m1" ? "m2" : "m1";
    // The start's paced moves done; paused, so no schedule runs between the plan and the one it predicts.
    await settledAt({ w1: 4, w2: 4 });
    expect((await cli("pause", "--reason", "compare")).code).toBe(0);
    cluster.setTasks(unitTasks(12));
    const plan = await json<PlanReport>("plan", "--generator", CONTROLLABLE_GENERATOR);
    expect(plan).toMatchObject({
      paused: "compare",
      tasks: 12,
      added: 4,
      removed: 0,
      moved: 0,
      unassigned: [],
    });
    expect(plan.balance["*"]).toBe(0);
    const text = await cli("plan", "--generator", CONTROLLABLE_GENERATOR);
    expect(text.stdout).toMatch(/12 tasks over 2 workers; 0 moved/);
    expect(text.stdout).toMatch(/schedules are paused \(compare\): the leader would write nothing now/);

    expect((await cli("resume")).code).toBe(0);
    await waitFor("the schedule on resume", async () =>
      (await json<HistoryEntry[]>("history", "--limit", "1"))[0]?.reasons.includes("resumed"),
    );
    expect(counts(await assignment())).toEqual(
      Object.fromEntries(plan.workers.map((w) => [w.name, w.tasks])),
    );
    const [last] = await json<HistoryEntry[]>("history", "--limit", "1");
    expect(last).toMatchObject({ outcome: "applied", leader: first, added: plan.added, moved: plan.moved });
    expect(new Set(last.moves)).toEqual(new Set(plan.moves));
    await cluster.waitConverged();

    // drain (during a leader failover) hands a worker's tasks off, cordon keeps them, uncordon undoes both
    const [drained] = await Promise.all([
      cli("drain", "w1", "--reason", "kernel update"),
      cluster.terminate(first),
    ]);
    expect(drained.code, drained.stderr).toBe(0);
    await waitFor("the standby leads", async () => (await cluster.leader()) === second, 15_000);
    await waitFor("w1 drained", async () => (await assignment()).get("w1")?.length === 0, 15_000);
    await cluster.waitConverged();
    const status = await json<StatusReport>("status");
    expect(status.workers.find((w) => w.name === "w1")).toMatchObject({
      registered: true,
      inPlan: true,
      cordon: "drain",
      cordonReason: "kernel update",
      tasks: 0,
    });
    expect((await cli("probe")).code).toBe(0);
    expect((await http(second, "/metrics")).body).toMatch(/escheduler_workers_cordoned\{mode="drain"\} 1/);

    expect((await cli("uncordon", "w1")).code).toBe(0);
    await waitFor("w1 takes tasks again", async () => (await assignment()).get("w1")?.length === 6, 15_000);
    expect((await cli("cordon", "w2")).code).toBe(0);
    await waitFor("the cordon in the plan", async () =>
      (await json<StatusReport>("status")).workers.some((w) => w.name === "w2" && w.cordon === "cordon"),
    );
    cluster.setTasks(unitTasks(16));
    expect((await cli("schedule")).code).toBe(0);
    expect(counts(await assignment())).toEqual({ w1: 10, w2: 6 });
    expect((await cli("uncordon", "w2")).code).toBe(0);
    await waitFor("rebalanced", async () => (await assignment()).get("w2")?.length === 8, 15_000);
    await cluster.waitConverged();
  });

  it("the removal guard refuses an empty generator until schedule --allow-removal; pause holds every leader across a failover; history survives and stays bounded", async () => {
    await startCluster(2);
    const first = (await cluster.leader()) as string;
    const second = first === "m1" ? "m2" : "m1";
    cluster.setTasks(unitTasks(16));
    const grown = await cli("schedule", "--reason", "grow");
    expect(grown.code, grown.stderr).toBe(0);
    expect(grown.stdout).toMatch(new RegExp(`^schedule applied by ${first} \\(epoch \\d+\\)$`, "m"));
    await settledAt({ w1: 8, w2: 8 });
    const before = await assignment();
    cluster.setTasks([]);
    const refused = await cli("schedule");
    expect(refused.code).toBe(1);
    expect(refused.stdout).toMatch(
      new RegExp(
        `schedule refused by ${first} .*removal guard: the schedule would stop 16 of 16 assigned tasks`,
      ),
    );
    expect(await assignment()).toEqual(before);
    expect((await json<StatusReport>("status")).refused?.reason).toMatch(/removal guard/);
    expect((await http(first, "/metrics")).body).toMatch(
      /escheduler_schedule_failures_total\{reason="removal_guard"\} 1/,
    );

    const allowed = await cli("schedule", "--allow-removal");
    expect(allowed.code, allowed.stdout).toBe(0);
    expect(counts(await assignment())).toEqual({ w1: 0, w2: 0 });
    // Nothing is assigned now, so the next schedule is a first one: never guarded.
    cluster.setTasks(unitTasks(8));
    expect((await cli("schedule")).code).toBe(0);
    expect((await json<StatusReport>("status")).refused).toBeNull();
    await settledAt({ w1: 4, w2: 4 });

    // pause holds every leader across a failover; resume applies once
    expect((await cli("pause", "--reason", "maintenance")).code).toBe(0);
    const frozen = await assignment();
    cluster.setTasks(unitTasks(10));
    const paused = await cli("schedule");
    expect(paused.code).toBe(1);
    expect(paused.stdout).toMatch(/schedules are paused \(maintenance\)/);
    expect((await json<StatusReport>("status")).paused).toMatchObject({ reason: "maintenance" });
    expect(await http(first, "/readyz")).toEqual({
      status: 200,
      body: "ready\nschedules are paused (maintenance)\n",
    });
    expect((await http(first, "/metrics")).body).toMatch(/escheduler_schedules_paused 1/);

    await cluster.terminate(first);
    await waitFor("the standby leads", async () => (await cluster.leader()) === second, 15_000);
    const stillRefused = await cli("schedule");
    expect(stillRefused.stdout).toMatch(new RegExp(`schedule refused by ${second} .*paused`));
    expect(await assignment()).toEqual(frozen);

    expect((await cli("resume")).code).toBe(0);
    await waitFor(
      "the schedule on resume",
      async () => (await json<HistoryEntry[]>("history", "--limit", "1"))[0]?.leader === second,
    );
    const [resumed] = await json<HistoryEntry[]>("history", "--limit", "1");
    expect(resumed.reasons).toContain("resumed");
    expect(resumed.added).toBe(2);
    await cluster.waitConverged();

    // history survives the master change, answers --task, and stays bounded at 1,000 records
    // The timeline also lists operator actions (kind "action", from /R/audit/); the bound is on schedules.
    const timeline = await json<(HistoryEntry & { kind?: string })[]>("history", "--limit", "1000");
    const all = timeline.filter((entry) => entry.kind === "schedule");
    expect(timeline.some((entry) => entry.kind === "action")).toBe(true);
    expect(new Set(all.map((entry) => entry.leader))).toEqual(new Set([first, second]));
    const lines = (await cli("history", "--task", "task-09")).stdout.trim().split("\n");
    expect(lines.at(-1)).toMatch(/task-09: \(new\) → w[12]/);

    // Fill the history up to the bound with made-up records at revisions the real ones do not use.
    const filler = JSON.stringify({ ...all[0], reasons: ["filler"] });
    const real = new Set(all.map((entry) => entry.revision));
    const fillers: number[] = [];
    for (let revision = 1; fillers.length < 1_000 - all.length; revision++) {
      if (!real.has(revision)) fillers.push(revision);
    }
    for (let from = 0; from < fillers.length; from += 100) {
      await Promise.all(
        fillers
          .slice(from, from + 100)
          .map((revision) => cluster.client.put(cluster.keys.history(revision)).value(filler)),
      );
    }
    cluster.setTasks(unitTasks(11));
    expect((await cli("schedule", "--reason", "bounded", "--as", "ops@test")).code).toBe(0);
    const keys = await cluster.client.getAll().prefix(cluster.keys.historyPrefix).keys();
    expect(keys).toHaveLength(1_000);
    expect(keys).not.toContain(cluster.keys.history(1));
    const [newest] = await json<HistoryEntry[]>("history", "--limit", "1");
    expect(newest.reasons).toContain("request by ops@test: bounded");
    // About 25 CLI processes one after another: at load 13 each takes 2.5-3.4 s to start and answer.
  }, 150_000);
});
