import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clusterReadiness, readClusterView } from "../../../src/readiness/index.js";
import type { StatusReport } from "../../../src/cli/status-view.js";
import { keyLayout } from "../../../src/node/index.js";
import {
  CliProcess,
  EXAMPLE_GENERATOR,
  EXAMPLE_HANDLER,
  ensureBuilt,
  msFromStoppedToExit,
  runCli,
} from "../../helpers/cli.js";
import { etcdEndpoints, testClient, uniqueRoot, waitFor } from "../../helpers/context.js";
import { freePort } from "../../helpers/etcd.js";

const TASKS = 12;
/** Longer than the hand-off below may take: a worker that only vanished by lease expiry would fail it. */
const WORKER_TTL_MS = 4_000;
/** Well under bin/escheduler.js's 3 s fallback exit: a stopped node must not wait for it. */
const STOPPED_TO_EXIT_MS = 1_500;

const ADMIN_TOKEN = "cluster-test-token";

describe("a master and three workers as real processes", () => {
  const root = uniqueRoot("cli-cluster");
  const keys = keyLayout(root);
  const workers = new Map<string, { process: CliProcess; http: string }>();
  let master: { process: CliProcess; http: string };
  let connection: string[];

  const view = () => readClusterView(testClient(), keys);
  const cli = (args: string[]) => runCli([...args, ...connection]);
  const statusJson = async (): Promise<StatusReport> => {
    const result = await cli(["status", "--json"]);
    expect(result.code, result.stderr).toBe(0);
    return JSON.parse(result.stdout) as StatusReport;
  };
  const startNode = async (role: "master" | "worker", name: string, extra: string[]) => {
    const http = `127.0.0.1:${await freePort()}`;
    const process = new CliProcess([role, "--name", name, "--http", http, ...connection, ...extra], {
      env: {
        ESCHEDULER_EXAMPLE_TASKS: String(TASKS),
        ESCHEDULER_EXAMPLE_START_MS: "20",
        ESCHEDULER_ADMIN_TOKEN: ADMIN_TOKEN,
      },
    });
    return { process, http: `http://${http}` };
  };
  const startWorker = async (name: string) => {
    const worker = await startNode("worker", name, [
      "--handler",
      EXAMPLE_HANDLER,
      "--workers",
      "3",
      "--ttl",
      `${WORKER_TTL_MS}ms`,
    ]);
    workers.set(name, worker);
    return worker;
  };

  beforeAll(async () => {
    await ensureBuilt();
    connection = ["--etcd", etcdEndpoints().join(","), "--root", root];
  });
  afterAll(async () => {
    await Promise.all([master?.process.stop(), ...[...workers.values()].map((w) => w.process.stop())]);
  });

  it("reports not ready, with the reasons, before anything runs", async () => {
    const probe = await cli(["probe"]);
    expect(probe.code).toBe(1);
    expect(probe.stdout.trim().split("\n")).toEqual(
      expect.arrayContaining(["no master is leading", "no plan has been applied yet"]),
    );
    expect(await statusJson()).toMatchObject({ root, leader: null, plan: null, ready: false, workers: [] });
  });

  it("converges: every task runs, probe says ready, status and HTTP endpoints agree", async () => {
    master = await startNode("master", "m1", [
      "--generator",
      EXAMPLE_GENERATOR,
      "--workers",
      "3",
      "--ttl",
      "2s",
      "--rebalance-wait",
      "200ms",
      "--http-admin",
    ]);
    for (const name of ["w1", "w2", "w3"]) await startWorker(name);
    await waitFor("the cluster to be ready", async () => clusterReadiness(await view()).ready, 30_000);

    expect(await cli(["probe"])).toMatchObject({ code: 0, stdout: "", stderr: "" });
    expect(await cli(["probe", "--worker", "w2"])).toMatchObject({ code: 0, stdout: "" });
    const status = await statusJson();
    expect(status).toMatchObject({ leader: "m1", ready: true, reasons: [] });
    expect(status.barrierLeft).toEqual(expect.any(String));
    expect(status.plan).toMatchObject({ leader: "m1", tasks: TASKS, workers: ["w1", "w2", "w3"] });
    expect(status.workers.map((w) => w.name)).toEqual(["w1", "w2", "w3"]);
    expect(status.workers.reduce((sum, w) => sum + w.tasks, 0)).toBe(TASKS);
    for (const worker of status.workers) {
      expect(worker).toMatchObject({ registered: true, inPlan: true, notRunning: [] });
      expect(worker.tasks).toBeGreaterThan(0);
      expect(Object.values(worker.groups).reduce((sum, n) => sum + n, 0)).toBe(worker.tasks);
    }

    const w1 = workers.get("w1")!;
    expect((await fetch(`${w1.http}/readyz`)).status).toBe(200);
    expect((await fetch(`${w1.http}/healthz`)).status).toBe(200);
    const w1Tasks = status.workers.find((w) => w.name === "w1")!.tasks;
    expect(await (await fetch(`${w1.http}/metrics`)).text()).toContain(
      `escheduler_worker_tasks{worker="w1",state="running"} ${w1Tasks}`,
    );
    expect(await (await fetch(`${w1.http}/status`)).json()).toMatchObject({
      name: "w1",
      status: "left_barrier",
    });
    expect((await fetch(`${master.http}/readyz`)).status).toBe(200);
    expect(await (await fetch(`${master.http}/metrics`)).text()).toMatch(/^escheduler_master_leader 1$/m);
    expect((await fetch(`${master.http}/schedule`, { method: "POST" })).status).toBe(401);
    const scheduled = await fetch(`${master.http}/schedule`, {
      method: "POST",
      headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, "Content-Type": "application/json" },
    });
    expect(scheduled.status).toBe(200);
    expect(await scheduled.json()).toMatchObject({ tasks: TASKS, workers: 3, moved: 0 });

    // Every log line is JSON (stdout is not a terminal) and names the node and its role.
    const line = JSON.parse(w1.process.stdout.split("\n")[0]);
    expect(line).toMatchObject({ name: "w1", role: "worker" });
    // One field per meaning: the node's name once (no "worker"/"master" copy), the epoch once.
    const lines = [...w1.process.stdout.split("\n"), ...master.process.stdout.split("\n")].filter(Boolean);
    expect(lines.filter((text) => /"(worker|master)":"(w1|m1)"/.test(text))).toEqual([]);
    // The default settings raise no warning (the default --stop-timeout only bounds a drain).
    expect(w1.process.stdout).not.toContain("stop timeout exceeds the lease margin");
    const applied = lines.find((text) => text.includes('"msg":"schedule applied"'))!;
    expect(applied.match(/"epoch":/g)).toHaveLength(1);
    expect(applied.match(/"name":/g)).toHaveLength(1);
  });

  it("SIGTERM on a worker hands its tasks to the others at once, and the worker exits 0", async () => {
    const w3 = workers.get("w3")!;
    const moving = (await view()).assignments.get("w3") ?? [];
    expect(moving.length).toBeGreaterThan(0);
    const signalledAt = Date.now();
    const stopped = w3.process.stop("SIGTERM");
    await waitFor("w3's tasks to run on w1 and w2", async () => {
      const { statuses } = await view();
      return moving.every((id) => ["w1", "w2"].some((w) => statuses.get(w)?.get(id)?.state === "running"));
    });
    const handedOffInMs = Date.now() - signalledAt;
    const exit = await stopped;
    // The drained worker stays in the plan until the schedule after it left.
    await waitFor("a plan of w1 and w2 with every task running", async () => {
      const current = await view();
      return clusterReadiness(current).ready && current.plan?.workers.join() === "w1,w2";
    });

    expect(exit).toMatchObject({ code: 0, signal: null });
    expect(msFromStoppedToExit(exit)).toBeLessThan(STOPPED_TO_EXIT_MS);
    expect(handedOffInMs).toBeLessThan(WORKER_TTL_MS - 1_000);
    const status = await statusJson();
    expect(status.workers.map((w) => [w.name, w.notRunning.length])).toEqual([
      ["w1", 0],
      ["w2", 0],
    ]);
    expect(status.workers.reduce((sum, w) => sum + w.tasks, 0)).toBe(TASKS);
    expect(await cli(["probe"])).toMatchObject({ code: 0 });
    const gone = await cli(["probe", "--worker", "w3"]);
    expect(gone.code).toBe(1);
    expect(gone.stdout).toContain('worker "w3" is not registered');
  });

  it("a worker joining after the fleet gathered exits as soon as it stopped on SIGTERM", async () => {
    // It skips the barrier (the marker is set), closing its watch of the marker while that stream is
    // still opening: a stream left open there kept the process alive until the fallback exit.
    const w4 = await startWorker("w4");
    await w4.process.waitForOutput(/"status":"left_barrier"/);
    const exit = await w4.process.stop("SIGTERM");
    expect(exit).toMatchObject({ code: 0, signal: null });
    expect(msFromStoppedToExit(exit)).toBeLessThan(STOPPED_TO_EXIT_MS);
  });

  it("SIGTERM on the master and the workers stops them cleanly (exit 0), and they exit once stopped", async () => {
    const masterExit = await master.process.stop("SIGTERM");
    expect(masterExit).toMatchObject({ code: 0, signal: null });
    expect(msFromStoppedToExit(masterExit)).toBeLessThan(STOPPED_TO_EXIT_MS);
    for (const name of ["w1", "w2"]) {
      const exit = await workers.get(name)!.process.stop("SIGTERM");
      expect(exit).toMatchObject({ code: 0, signal: null });
      expect(msFromStoppedToExit(exit)).toBeLessThan(STOPPED_TO_EXIT_MS);
    }
    const status = await statusJson();
    expect(status.leader).toBeNull();
    // Their assignments stay (no leader to remove them) but nobody is registered any more.
    expect(status.workers.filter((w) => w.registered)).toEqual([]);
  });
});

describe("a task whose start fails", () => {
  const root = uniqueRoot("cli-failing");
  const nodes: CliProcess[] = [];
  let folder: string;
  let tasksFile: string;

  beforeAll(async () => {
    await ensureBuilt();
    folder = mkdtempSync(join(tmpdir(), "escheduler-cli-tasks-"));
    tasksFile = join(folder, "tasks.json");
    writeFileSync(
      tasksFile,
      JSON.stringify([{ id: "fine" }, { id: "broken", group: "g", payload: { failStart: true } }]),
    );
  });
  afterAll(async () => {
    await Promise.all(nodes.map((node) => node.stop()));
    if (folder) rmSync(folder, { recursive: true, force: true });
  });

  it("shows as failed, with its error, in status and probe", async () => {
    const connection = ["--etcd", etcdEndpoints().join(","), "--root", root, "--ttl", "2s"];
    const env = { ESCHEDULER_EXAMPLE_TASKS_FILE: tasksFile };
    nodes.push(
      new CliProcess(
        ["master", "--generator", EXAMPLE_GENERATOR, "--rebalance-wait", "200ms", ...connection],
        { env },
      ),
    );
    nodes.push(
      new CliProcess(["worker", "--handler", EXAMPLE_HANDLER, "--name", "w1", ...connection], { env }),
    );
    const target = ["--etcd", etcdEndpoints().join(","), "--root", root];
    // The worker retries the start with backoff, so between failures the task is briefly `starting`.
    const report = await waitFor("status to show the failure", async () => {
      const parsed = JSON.parse((await runCli(["status", "--json", ...target])).stdout) as StatusReport;
      return parsed.workers[0]?.notRunning[0]?.state === "failed" ? parsed : undefined;
    });
    expect(report.ready).toBe(false);
    expect(report.workers[0]).toMatchObject({
      name: "w1",
      tasks: 2,
      groups: { "": 1, g: 1 },
      notRunning: [{ id: "broken", state: "failed", error: expect.stringContaining("refuses to start") }],
    });
    const probe = await waitFor("probe to name the failure", async () => {
      const result = await runCli(["probe", "--worker", "w1", ...target]);
      return result.stdout.includes("is failed") ? result : undefined;
    });
    expect(probe.code).toBe(1);
    expect(probe.stdout).toMatch(/task "broken" on "w1" is failed: .*refuses to start/);
  });
});
