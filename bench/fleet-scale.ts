/**
 * Fleet-scale benchmark (issue 13): FLEET_WORKERS library workers (default 500), each with its own
 * etcd client, spread over FLEET_PROCESSES processes (default 4), one real master process, and
 * FLEET_TASKS tasks (default 50,000; 20 groups, 10 % keyed) on a throw-away etcd with its default
 * heartbeat and election settings (FLEET_ETCD_ARGS adds flags, e.g. "--backend-batch-limit 1000"),
 * TTL 10 s. Phases: registration, first start, SIGKILL of one process (a quarter of the workers), a
 * join of as many new workers. Prints each phase's time, etcd Txn calls per task (etcd's /metrics),
 * leases lost, etcd CPU, peak memory (VmHWM) of the master and of the largest worker process, and the
 * machine's speed before and after. Alone: `npm run bench -- fleet`.
 *
 * Registration also reports etcd's requests by method and bytes sent, and the CPU of the worker
 * processes and etcd over it; FLEET_REGISTRATION_ONLY=1 stops there.
 * The first start, the crash and the join report their CPU (etcd, the master, each worker process) and
 * etcd's requests; FLEET_FIRST_START_ONLY=1 stops after the first start. FLEET_HOST_NODE_ARGS and
 * FLEET_MASTER_NODE_ARGS pass node flags to the worker processes and the master (e.g.
 * "--cpu-prof --cpu-prof-dir=/tmp/prof"); they then exit by SIGTERM at the end, so the profiles are
 * written, and the phases' windows are printed on the monotonic clock profiles use.
 * FLEET_TIMELINE=1 prints the phases' timelines (bench/fleet-timeline.ts): every 500 ms the workers'
 * registered (and deleted), assigned and running counts and the CPU of the master, etcd and the worker
 * processes, between the master's info lines (its schedules, paced moves and hand-off writes).
 * FLEET_GATHER=1 starts the fleet as `--workers N` does (N = FLEET_WORKERS, on the workers and the
 * master): the workers and the master gather in the first start's double barrier, whose traffic
 * then shares the registration and the first start (without it, the cap alone is set, as
 * `--max-workers N` does).
 * The master runs with a heap limit, as the Kubernetes example runs it (FLEET_MASTER_HEAP_MB, default
 * 768; 0: node's own, which lets the heap grow to about four times its last live size).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath, pathToFileURL } from "node:url";
import { startEtcd } from "../src/cli/etcd-process.js";
import { createEtcdClient, keyLayout, type Task } from "../src/node/index.js";
import { build } from "./fleet.js";
import { Host, type HostReport, stopGracefully } from "./fleet-hosts.js";
import { peakMB, txnCalls } from "./process-stats.js";
import { fleetTimeline, joinTimeline, type Timeline } from "./fleet-timeline.js";
import { type CostPids, machineSpeed, perWorker, phaseSince, readCost, row, split } from "./fleet-rows.js";
import { type BenchRow, printReport } from "./report.js";

const REPO = join(dirname(fileURLToPath(import.meta.url)), "..");
const BINARY = join(REPO, "bin", "escheduler.js");
const GENERATOR = join(REPO, "test", "fixtures", "controllable-generator.mjs");
const TTL_MS = 10_000;
const REBALANCE_WAIT_MS = 5_000;
const GATHER = Boolean(process.env.FLEET_GATHER);
const PHASE_LIMIT_MS = 240_000;
// The worker processes' nice (FLEET_HOST_NICE; 0: none): they stand in for machines of their own, and at
// equal priority took etcd's and the master's CPU until etcd renewed no lease (README: Fleet at scale).
const HOST_NICE = Number(process.env.FLEET_HOST_NICE ?? 10);
const MASTER_HEAP_MB = Number(process.env.FLEET_MASTER_HEAP_MB ?? 768);
// FLEET_TIMELINE=1 prints the phases' timelines (bench/fleet-timeline.ts), with the master's info lines.
const TIMELINE = Boolean(process.env.FLEET_TIMELINE);
// etcd's own heartbeat and election defaults, as a production member runs, and FLEET_ETCD_ARGS.
const ETCD_ARGS = ["--heartbeat-interval", "100", "--election-timeout", "1000"].concat(
  (process.env.FLEET_ETCD_ARGS ?? "").split(" ").filter(Boolean),
);

export async function benchFleet(): Promise<BenchRow[]> {
  const workerCount = Number(process.env.FLEET_WORKERS ?? 500);
  const taskCount = Number(process.env.FLEET_TASKS ?? 50_000);
  const processCount = Number(process.env.FLEET_PROCESSES ?? 4);
  const quarter = Math.round(workerCount / processCount);
  const firstStartOnly = Boolean(process.env.FLEET_FIRST_START_ONLY);
  const registrationOnly = Boolean(process.env.FLEET_REGISTRATION_ONLY);
  const masterNodeArgs = [
    ...(MASTER_HEAP_MB > 0 ? [`--max-old-space-size=${MASTER_HEAP_MB}`] : []),
    ...(process.env.FLEET_MASTER_NODE_ARGS ?? "").split(" ").filter(Boolean),
  ];
  const heap = MASTER_HEAP_MB > 0 ? `heap limit ${MASTER_HEAP_MB} MB` : "no heap limit";
  build();
  const speedBefore = machineSpeed("before the run");
  const etcd = await startEtcd({ args: ETCD_ARGS });
  const dir = mkdtempSync(join(tmpdir(), "escheduler-fleet-"));
  const root = `fleet-${process.pid}`;
  const keys = keyLayout(root);
  const client = createEtcdClient({ etcd: [etcd.hostPort] });
  const hosts: Host[] = [];
  let master: ChildProcess | undefined;
  let masterLeasesLost = 0;
  let timeline: Timeline | undefined;
  const hostEnv = (first: number, count: number) => ({
    FLEET_ETCD: etcd.hostPort,
    FLEET_ROOT: root,
    FLEET_TTL_MS: String(TTL_MS),
    FLEET_MAX_WORKERS: String(workerCount),
    FLEET_EXPECTED_WORKERS: GATHER ? String(workerCount) : "0",
    FLEET_HOST_WORKERS: Array.from(
      { length: count },
      (_, i) => `w${String(first + i).padStart(5, "0")}`,
    ).join(","),
  });
  const live = () => hosts.filter((host) => !host.killed);
  const sum = (field: keyof HostReport, of = live()) =>
    of.reduce((total, host) => total + host.latest[field], 0);
  const allRunning = () => sum("running") === taskCount && sum("assigned") === taskCount;
  const pidsOf = (masterPid: number | undefined): CostPids => ({
    etcd: etcd.process?.pid,
    master: masterPid,
    hosts: live().map((host) => host.child.pid),
  });
  const cleanUp = async () => {
    // Profiled processes write their profiles on a graceful stop (FLEET_HOST_NODE_ARGS, FLEET_MASTER_NODE_ARGS).
    if (process.env.FLEET_HOST_NODE_ARGS) await stopGracefully(live().map((host) => host.child));
    if (process.env.FLEET_MASTER_NODE_ARGS && master) await stopGracefully([master]);
    master?.kill("SIGKILL");
    for (const host of hosts) host.child.kill("SIGKILL");
    client.close();
    await etcd.destroy();
    rmSync(dir, { recursive: true, force: true });
  };
  // An interrupted run leaves no etcd, master or worker process behind.
  const interrupted = () => void cleanUp().finally(() => process.exit(130));
  process.once("SIGINT", interrupted).once("SIGTERM", interrupted);
  try {
    writeFileSync(join(dir, "generator.json"), JSON.stringify({ tasks: fleetTasks(taskCount) }));
    for (let p = 0; p < processCount; p++) {
      const count = p === processCount - 1 ? workerCount - quarter * (processCount - 1) : quarter;
      hosts.push(new Host(hostEnv(p * quarter, count), count, HOST_NICE));
    }
    await Promise.all(hosts.map((host) => host.ready));

    console.error(
      `fleet: registering ${workerCount} workers over ${processCount} processes (nice ${HOST_NICE}: FLEET_HOST_NICE)…`,
    );
    const size = `${workerCount} workers × ${taskCount} tasks${GATHER ? ", gathered (--workers)" : ""}`;
    // No master runs yet: its CPU counts from its start, with the first start.
    let costAt = await readCost(etcd.endpoint, pidsOf(undefined));
    let monotonicAt = process.hrtime.bigint() / 1000n;
    let startedAt = performance.now();
    for (const host of hosts) host.go();
    await until("every worker registered", () => sum("registered") === workerCount);
    const registration = await phaseSince(startedAt, etcd.endpoint, pidsOf(undefined), costAt);
    const registrationRows = [
      row(`fleet ${size}: registration`, registration, 5_000, "≤ 5 s"),
      ...perWorker(`fleet ${size}: registration`, workerCount, registration),
      split(`fleet ${size}: registration`, registration),
    ];
    console.error(
      `fleet: registration window ${monotonicAt}-${process.hrtime.bigint() / 1000n} µs (monotonic)`,
    );
    if (registrationOnly) {
      await stopGracefully(hosts.map((host) => host.child));
      return [speedBefore, ...registrationRows, machineSpeed("after the run")];
    }

    console.error(`fleet: first start of ${taskCount} tasks…`);
    const txnsBefore = await txnCalls(etcd.endpoint);
    costAt = await readCost(etcd.endpoint, pidsOf(undefined));
    monotonicAt = process.hrtime.bigint() / 1000n;
    startedAt = performance.now();
    master = spawn(
      process.execPath,
      [
        ...masterNodeArgs,
        BINARY,
        "master",
        ...["--generator", GENERATOR, "--interval", "1h"],
        ...(GATHER ? ["--workers", String(workerCount)] : []),
        ...["--rebalance-wait", `${REBALANCE_WAIT_MS}ms`],
        ...[
          "--etcd",
          etcd.hostPort,
          "--root",
          root,
          "--ttl",
          `${TTL_MS}ms`,
          "--log-level",
          TIMELINE ? "info" : "warn",
        ],
      ],
      {
        env: { ...process.env, ESCHEDULER_GENERATOR_FILE: join(dir, "generator.json") },
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    // The master's warnings pass through; its own lease losses are counted.
    createInterface({ input: master.stdout! }).on("line", (line) => {
      if (timeline) return timeline.master(line);
      if (TIMELINE && /"level":[23]0/.test(line)) return;
      process.stderr.write(`${line}\n`);
      if (line.includes('"msg":"lease lost"')) masterLeasesLost++;
    });
    const pids = { master: master.pid, etcd: etcd.process?.pid };
    const watch = { client, workersPrefix: keys.workersPrefix, endpoint: etcd.endpoint };
    if (TIMELINE) timeline = await fleetTimeline("first start", hosts, pids, watch);
    await until("every task running", allRunning);
    const firstStart = await phaseSince(startedAt, etcd.endpoint, pidsOf(master.pid), costAt);
    timeline?.print(`first start of ${taskCount}`);
    timeline = undefined;
    const firstStartTxns = (await txnCalls(etcd.endpoint)) - txnsBefore;
    const firstStartRows = [
      row(`fleet ${size}: first start, master start → all running`, firstStart, 20_000, "≤ 20 s"),
      {
        name: `fleet ${size}: etcd Txn calls per task, first start (${firstStartTxns} Txn)`,
        value: firstStartTxns / taskCount,
        unit: "Txn",
        target: "≤ 0.15",
        met: firstStartTxns / taskCount <= 0.15,
      },
    ];
    const firstStartSplit = split(`fleet ${size}: first start`, firstStart);
    if (firstStartOnly) {
      console.error(
        `fleet: first start window ${monotonicAt}-${process.hrtime.bigint() / 1000n} µs (monotonic)`,
      );
      const masterMB = peakMB(master.pid);
      await stopGracefully([master, ...hosts.map((host) => host.child)]);
      return [
        speedBefore,
        ...registrationRows,
        ...firstStartRows,
        firstStartSplit,
        {
          name: `fleet ${size}: first start, master peak memory (VmHWM; ${heap})`,
          value: masterMB,
          unit: "MB",
        },
        {
          name: `fleet ${size}: first start, worker suspensions (leases lost: ${sum("lost")})`,
          value: sum("suspended"),
          unit: "",
        },
        machineSpeed("after the run"),
      ];
    }

    console.error(`fleet: SIGKILL of ${hosts[0].size} workers…`);
    hosts[0].killed = true;
    if (TIMELINE) timeline = await fleetTimeline("crash", live(), pids, watch);
    costAt = await readCost(etcd.endpoint, pidsOf(master.pid));
    startedAt = performance.now();
    hosts[0].child.kill("SIGKILL");
    await until("the crashed workers' tasks running elsewhere", allRunning);
    const crash = await phaseSince(startedAt, etcd.endpoint, pidsOf(master.pid), costAt);
    timeline?.print(`crash of ${hosts[0].size}`);
    timeline = undefined;

    console.error(`fleet: ${hosts[0].size} workers join…`);
    const joiner = new Host(hostEnv(workerCount, hosts[0].size), hosts[0].size, HOST_NICE);
    await joiner.ready;
    hosts.push(joiner);
    costAt = await readCost(etcd.endpoint, pidsOf(master.pid));
    startedAt = performance.now();
    joiner.go();
    const older = live().slice(0, -1);
    if (TIMELINE) timeline = joinTimeline(joiner, older, () => sum("running"), master.pid, etcd.process?.pid);
    const share = Math.floor((taskCount * 0.8) / workerCount) * joiner.size;
    await until("the new workers carrying their share", async () => {
      if (!allRunning() || joiner.latest.running < share) return false;
      const plan = JSON.parse((await client.get(keys.plan).string()) ?? "{}") as { workers?: string[] };
      return plan.workers?.length === workerCount;
    });
    const join_ = await phaseSince(startedAt, etcd.endpoint, pidsOf(master.pid), costAt);
    timeline?.print(`join of ${joiner.size}`);

    const survivors = hosts.filter((host) => !host.killed);
    const leasesLost = sum("lost", survivors) + masterLeasesLost;
    const suspensions = sum("suspended", survivors);
    const masterMB = peakMB(master.pid);
    const workerMB = Math.max(...live().map((host) => peakMB(host.child.pid)));
    return [
      speedBefore,
      ...registrationRows,
      ...firstStartRows,
      row(
        `fleet ${size}: SIGKILL of ${hosts[0].size} workers → all running (TTL ${TTL_MS / 1000} s, rebalance-wait ${REBALANCE_WAIT_MS / 1000} s)`,
        crash,
        TTL_MS + REBALANCE_WAIT_MS + 10_000,
        "≤ TTL + rebalance-wait + 10 s",
      ),
      row(
        `fleet ${size}: join of ${joiner.size} → their share running`,
        join_,
        REBALANCE_WAIT_MS + 15_000,
        "≤ rebalance-wait + 15 s",
      ),
      firstStartSplit,
      split(`fleet ${size}: crash`, crash),
      split(`fleet ${size}: join (the joiners' process last)`, join_),
      {
        name: `fleet ${size}: leases lost, whole run (surviving workers and the master; worker suspensions: ${suspensions})`,
        value: leasesLost,
        unit: "leases",
        target: "0",
        met: leasesLost === 0,
      },
      {
        name: `fleet ${size}: master peak memory (VmHWM; ${heap}: FLEET_MASTER_HEAP_MB)`,
        value: masterMB,
        unit: "MB",
        target: "< 500 MB",
        met: masterMB < 500,
      },
      {
        name: `fleet ${size}: worker process peak memory (VmHWM), ${quarter} workers each`,
        value: workerMB,
        unit: "MB",
      },
      machineSpeed("after the run"),
    ];
  } finally {
    process.off("SIGINT", interrupted).off("SIGTERM", interrupted);
    await cleanUp();
  }
}

/** 20 groups; every tenth task keyed (10 tasks a key). */
function fleetTasks(count: number): Task[] {
  return Array.from({ length: count }, (_, i) => ({
    id: `task-${String(i).padStart(6, "0")}`,
    group: `g${i % 20}`,
    ...(i % 10 === 0 ? { key: `k${Math.floor(i / 100)}` } : {}),
  }));
}

async function until(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + PHASE_LIMIT_MS;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`fleet benchmark: no ${what} within ${PHASE_LIMIT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  printReport("escheduler fleet benchmark", await benchFleet());
}
