/**
 * Failover benchmark with real `bin/escheduler.js` processes (the built dist/): how long a crashed
 * worker's tasks take to run elsewhere (SIGKILL) and a leaving worker's (SIGTERM), each beside the
 * lease TTL that a crash must wait out; and the peak memory (VmHWM) of the master and of a worker
 * carrying 10,000 tasks, beside an idle standby master and an idle worker. Alone: `npx tsx bench/failover.ts`.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { createEtcdClient, keyLayout, type Task } from "../src/node/index.js";
import { convergenceProblems, readState, readTaskEvents, runIntervals } from "../test/helpers/invariants.js";
import { type BenchRow, printReport } from "./report.js";

const REPO = join(dirname(fileURLToPath(import.meta.url)), "..");
const BINARY = join(REPO, "bin", "escheduler.js");
const HANDLER = join(REPO, "test", "fixtures", "recording-handler.mjs");
const GENERATOR = join(REPO, "test", "fixtures", "controllable-generator.mjs");

const TTL_MS = 2_000;
const REBALANCE_WAIT_MS = 200;
const FAILOVER_TASKS = 300;
const MEMORY_TASKS = 10_000;

export async function benchFailover(endpoints: string[]): Promise<BenchRow[]> {
  build();
  const failover = await measureFailover(endpoints);
  const memory = await measureMemory(endpoints);
  const ttl = { name: `lease TTL (--ttl ${TTL_MS / 1000}s)`, value: TTL_MS };
  return [
    {
      name: `crash failover: worker SIGKILL → its ${failover.crashTasks} tasks run elsewhere (--rebalance-wait ${REBALANCE_WAIT_MS}ms)`,
      value: failover.crashMs,
      unit: "ms",
      baseline: ttl,
      target: "< TTL + rebalance-wait + 1 s",
      met: failover.crashMs < TTL_MS + REBALANCE_WAIT_MS + 1_000,
    },
    {
      name: `graceful leave: worker SIGTERM → its ${failover.leaveTasks} tasks run elsewhere`,
      value: failover.leaveMs,
      unit: "ms",
      baseline: ttl,
      target: "< TTL",
      met: failover.leaveMs < TTL_MS,
    },
    {
      name: `master peak memory (VmHWM), leading ${MEMORY_TASKS} tasks × 3 workers`,
      value: memory.leaderMB,
      unit: "MB",
      baseline: { name: "standby master", value: memory.standbyMB },
      target: "< 300 MB",
      met: memory.leaderMB < 300,
    },
    {
      name: `worker peak memory (VmHWM), running ${Math.round(MEMORY_TASKS / 3)} tasks`,
      value: memory.workerMB,
      unit: "MB",
      baseline: { name: "idle worker", value: memory.idleWorkerMB },
      target: "< 300 MB",
      met: memory.workerMB < 300,
    },
  ];
}

/** One worker killed, then (after a replacement joined) one worker terminated; each timed until its tasks run elsewhere. */
async function measureFailover(endpoints: string[]) {
  const fleet = new Fleet(endpoints, tasks(FAILOVER_TASKS));
  try {
    fleet.master("m1");
    for (const name of ["w1", "w2", "w3"]) fleet.worker(name);
    await fleet.converged();

    const crashed = await fleet.assignedTo("w1");
    const killedAt = fleet.signal("w1", "SIGKILL");
    await fleet.converged();
    const crashMs = fleet.movedWithin(crashed, killedAt, "w1");

    fleet.worker("w4");
    await fleet.converged();
    const leaving = await fleet.assignedTo("w2");
    const terminatedAt = fleet.signal("w2", "SIGTERM");
    await fleet.converged();
    const leaveMs = fleet.movedWithin(leaving, terminatedAt, "w2");
    return { crashMs, crashTasks: crashed.length, leaveMs, leaveTasks: leaving.length };
  } finally {
    await fleet.close();
  }
}

/** A leader, a standby and 3 workers over MEMORY_TASKS tasks, plus an idle worker on a root of its own. */
async function measureMemory(endpoints: string[]) {
  const fleet = new Fleet(endpoints, tasks(MEMORY_TASKS));
  const idle = new Fleet(endpoints, []);
  try {
    fleet.master("m1");
    await fleet.leading("m1");
    fleet.master("m2");
    for (const name of ["w1", "w2", "w3"]) fleet.worker(name);
    idle.worker("idle");
    await fleet.converged(120_000);
    await idle.registered("idle");
    const workers = ["w1", "w2", "w3"].map((name) => fleet.peakMB(name));
    return {
      leaderMB: fleet.peakMB("m1"),
      standbyMB: fleet.peakMB("m2"),
      workerMB: Math.max(...workers),
      idleWorkerMB: idle.peakMB("idle"),
    };
  } finally {
    await Promise.all([fleet.close(), idle.close()]);
  }
}

function tasks(count: number): Task[] {
  return Array.from({ length: count }, (_, i) => ({ id: `task-${i}`, group: `g${i % 3}` }));
}

/** The built dist/ is what the binary runs. */
function build(): void {
  const tsc = join(REPO, "node_modules", "typescript", "bin", "tsc");
  spawnSync(process.execPath, [tsc, "-p", "tsconfig.build.json"], { cwd: REPO, stdio: "ignore" });
}

/** escheduler processes on one fresh root, with the recording handler and a fixed task list. */
class Fleet {
  private readonly dir = mkdtempSync(join(tmpdir(), "escheduler-bench-"));
  private readonly keys = keyLayout(
    `bench-${process.pid}-${Date.now()}-${Math.random().toString(16).slice(2, 8)}`,
  );
  private readonly client;
  private readonly processes = new Map<string, ChildProcess>();
  /** Workers started and not signalled. */
  private readonly workers = new Set<string>();
  private readonly killedAt = new Map<number, number>();
  private readonly recordFile = join(this.dir, "events.jsonl");
  private readonly generatorFile = join(this.dir, "generator.json");

  constructor(
    private readonly endpoints: string[],
    private readonly taskList: Task[],
  ) {
    this.client = createEtcdClient({ etcd: endpoints });
    writeFileSync(this.generatorFile, JSON.stringify({ tasks: taskList }));
  }

  master(name: string): void {
    this.spawn(name, [
      "master",
      "--generator",
      GENERATOR,
      "--rebalance-wait",
      `${REBALANCE_WAIT_MS}ms`,
      "--interval",
      "1h",
    ]);
  }

  worker(name: string): void {
    this.workers.add(name);
    this.spawn(name, ["worker", "--handler", HANDLER]);
  }

  private spawn(name: string, args: string[]): void {
    const child = spawn(
      process.execPath,
      [
        BINARY,
        ...args,
        "--name",
        name,
        "--etcd",
        this.endpoints.join(","),
        "--root",
        this.keys.root,
        "--ttl",
        `${TTL_MS}ms`,
        "--log-level",
        "warn",
      ],
      {
        env: {
          ...process.env,
          ESCHEDULER_RECORD_FILE: this.recordFile,
          ESCHEDULER_GENERATOR_FILE: this.generatorFile,
        },
        stdio: "ignore",
      },
    );
    this.processes.set(name, child);
  }

  /** Sends `signal`; resolves the moment it was sent. */
  signal(name: string, signal: NodeJS.Signals): number {
    const child = this.processes.get(name);
    child?.kill(signal);
    this.workers.delete(name);
    const at = performance.timeOrigin + performance.now();
    if (signal === "SIGKILL" && child?.pid) this.killedAt.set(child.pid, at);
    return at;
  }

  async leading(name: string): Promise<void> {
    await until(`${name} to lead`, async () => {
      const { view } = await readState(this.client, this.keys);
      return view.leader === name;
    });
  }

  async registered(name: string): Promise<void> {
    await until(`${name} to register`, async () =>
      (await readState(this.client, this.keys)).view.workers.has(name),
    );
  }

  /** Resolves once every task runs on exactly one of the running workers, as planned. */
  async converged(timeoutMs = 30_000): Promise<void> {
    const live = [...this.workers];
    let problems: string[] = [];
    await until(
      "convergence",
      async () => {
        const { view } = await readState(this.client, this.keys);
        const fates = [...this.killedAt].map(([pid, endedAt]) => ({
          pid,
          name: "",
          role: "worker" as const,
          endedAt,
          pauses: [],
        }));
        const { intervals } = runIntervals(readTaskEvents(this.recordFile), fates);
        problems = convergenceProblems(view, this.taskList, live, intervals);
        return problems.length === 0;
      },
      timeoutMs,
      () => problems.slice(0, 5).join("; "),
    );
  }

  async assignedTo(worker: string): Promise<string[]> {
    const { assignment } = await readState(this.client, this.keys);
    return assignment.get(worker) ?? [];
  }

  /** The time from `since` until the last of `taskIds` started on another process than `from`'s. */
  movedWithin(taskIds: string[], since: number, from: string): number {
    const pid = this.processes.get(from)?.pid;
    const events = readTaskEvents(this.recordFile);
    return Math.max(
      ...taskIds.map((task) => {
        const start = events.find(
          (e) => e.event === "start" && e.task === task && e.t > since && e.pid !== pid,
        );
        return (start?.t ?? Number.POSITIVE_INFINITY) - since;
      }),
    );
  }

  /** Peak resident set size of a running process, from /proc (Linux). */
  peakMB(name: string): number {
    const pid = this.processes.get(name)?.pid;
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? Number.NaN);
    return kb / 1024;
  }

  async close(): Promise<void> {
    await Promise.all(
      [...this.processes.values()].map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once("exit", () => resolve());
            child.kill("SIGKILL");
          }),
      ),
    );
    await this.client
      .delete()
      .prefix(this.keys.prefix)
      .catch(() => undefined);
    this.client.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function until(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 30_000,
  why: () => string = () => "",
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`failover bench: no ${what} within ${timeoutMs}ms: ${why()}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { startEtcd } = await import("../src/cli/etcd-process.js");
  const etcd = await startEtcd();
  try {
    printReport("escheduler failover benchmark", await benchFailover([etcd.hostPort]));
  } finally {
    await etcd.destroy();
  }
}
