/**
 * The first schedule onto running workers (issue 23): 4 library `Worker`s, each in a process of its own
 * with its own etcd client and a handler that does nothing, register first; then a master (this
 * process) is elected and schedules 50,000 tasks onto them while they claim, start and report their
 * tasks. Measured from the first task key (seen by a watch) to `/R/plan` (seen by a watch), beside
 * bench/master.ts's raw write of the same keys and values (128-op transactions, 4 in flight) on a fresh
 * root in the same round; then the time until every task runs, as the workers report it, and etcd Txn
 * calls per side. Rounds alternate which side goes first; the figures are medians over the rounds, with
 * the load average beside them. Alone: `npm run bench -- first-schedule` or `npx tsx bench/first-schedule.ts`.
 * Each round also says how the master's transactions went in the window (bench/txn-timeline.ts).
 * To tell the master's share of the window from the workers': FIRST_SCHEDULE_IDLE=1 registers the
 * workers only (lease keys, no worker process: nothing claims or reports; not part of the measured row).
 * The worker processes run at nice 10 (FIRST_SCHEDULE_WORKER_NICE; 0: the bench's own priority): their
 * CPU yields to etcd and the master, as on a fleet where each worker has its own machine; their claims
 * and statuses still load etcd as they would there.
 */
import { loadavg } from "node:os";
import { pathToFileURL } from "node:url";
import type { Etcd3 } from "etcd3";
import { startEtcd } from "../src/cli/etcd-process.js";
import { Master, type ScheduleResult } from "../src/master/index.js";
import { createEtcdClient, type KeyLayout, LeaseSession, type Task } from "../src/node/index.js";
import { Host, type HostReport } from "./fleet-hosts.js";
import { cpuMs, txnCalls } from "./process-stats.js";
import { freshRoot, IN_FLIGHT, rawWrite, TASKS, TXN_OPS, WORKERS } from "./master.js";
import { type BenchRow, printReport } from "./report.js";
import { TxnTimeline, txnText, type TxnWindow } from "./txn-timeline.js";

const ROUNDS = Number(process.env.FIRST_SCHEDULE_ROUNDS ?? 3);
const TASK_COUNT = Number(process.env.FIRST_SCHEDULE_TASKS ?? TASKS);
const TTL_MS = 10_000;
const LIMIT_MS = 180_000;
const IDLE = process.env.FIRST_SCHEDULE_IDLE === "1";
const WORKER_NICE = Number(process.env.FIRST_SCHEDULE_WORKER_NICE ?? 10);

interface Cpu {
  etcd: number;
  master: number;
  workers: number;
}

interface Round {
  /** First task key → `/R/plan`, both as a watch saw them. */
  scheduleMs: number;
  /** First task key → every task running, as the workers report it. */
  allRunningMs: number;
  rawMs: number;
  /** The master's transactions in the window. */
  txns: TxnWindow;
  /** Master start → first task key: election, generator, read and plan. */
  beforeFirstKeyMs: number;
  /** etcd Txn calls between master start and `/R/plan`: the master's own, and everyone's. */
  masterTxns: number;
  totalTxns: number;
  /** etcd Txn calls between master start and every task running, everyone's. */
  allRunningTxns: number;
  /** CPU time spent between the first task key and `/R/plan`, in ms: etcd's, this process's (the master), the workers'. */
  cpu: Cpu;
  /** CPU time spent between master start and every task running (less at the mercy of the machine's load than times). */
  firstStartCpu: Cpu;
  result: ScheduleResult;
  load: number;
}

export async function benchFirstSchedule(endpoints: string[], etcdPid?: number): Promise<BenchRow[]> {
  const client = createEtcdClient({ etcd: endpoints });
  const tasks: Task[] = Array.from({ length: TASK_COUNT }, (_, i) => ({
    id: `task-${i}`,
    payload: { shard: i },
  }));
  const rounds: Round[] = [];
  try {
    await rawWrite(client, freshRoot("warm-up"), tasks.slice(0, 5_000));
    for (let round = 0; round < ROUNDS; round++) {
      const load = loadavg()[0];
      let rawMs = 0;
      const raw = async () => {
        rawMs = await rawWrite(client, freshRoot("raw"), tasks);
      };
      // Alternate the order: etcd's store grows with every round, which must not favour either side.
      if (round % 2 === 0) await raw();
      const measured = await scheduleOntoRunningWorkers(
        endpoints,
        etcdPid,
        client,
        freshRoot("first"),
        tasks,
      );
      if (round % 2 === 1) await raw();
      rounds.push({ ...measured, rawMs, load });
      console.error(
        `first-schedule round ${round + 1}: schedule ${measured.scheduleMs.toFixed(0)} ms, raw ${rawMs.toFixed(0)} ms (raw/schedule ${(rawMs / measured.scheduleMs).toFixed(2)}×), all running ${measured.allRunningMs.toFixed(0)} ms, Txn master ${measured.masterTxns} / all ${measured.totalTxns}, ${txnText(measured.txns)}, ${cpuText(measured)}, first start CPU ${cpuSeconds(measured.firstStartCpu)}, load ${load.toFixed(1)}`,
      );
    }
  } finally {
    client.close();
  }
  return rows(rounds);
}

function rows(rounds: Round[]): BenchRow[] {
  const at = (pick: (round: Round) => number) => median(rounds.map(pick));
  const ratio = at((round) => round.rawMs / round.scheduleMs);
  const scheduleMs = at((round) => round.scheduleMs);
  const loads = rounds.map((round) => round.load.toFixed(1)).join(" / ");
  const size = `${TASK_COUNT} tasks × ${WORKERS.length} ${IDLE ? "registered (idle) workers" : `running workers at nice ${WORKER_NICE}`}`;
  const txns = txnText({
    txns: at((round) => round.txns.txns),
    p50Ms: at((round) => round.txns.p50Ms),
    p90Ms: at((round) => round.txns.p90Ms),
    meanInFlight: at((round) => round.txns.meanInFlight),
    tailMs: at((round) => round.txns.tailMs),
  });
  const phases = `master start → first key ${at((round) => round.beforeFirstKeyMs).toFixed(0)} ms; ${txns}; ${cpuText(
    {
      scheduleMs,
      cpu: {
        etcd: at((round) => round.cpu.etcd),
        master: at((round) => round.cpu.master),
        workers: at((round) => round.cpu.workers),
      },
    },
  )}`;
  const rawTxns = Math.ceil(TASK_COUNT / TXN_OPS);
  return [
    {
      name: `first schedule onto ${size}, first task key → /R/plan (medians of ${rounds.length} rounds; raw/schedule ${ratio.toFixed(2)}× (per round ${rounds.map((round) => (round.rawMs / round.scheduleMs).toFixed(2)).join(" / ")}); ${phases}; load ${loads})`,
      value: scheduleMs,
      unit: "ms",
      baseline: { name: `raw ${TXN_OPS}-op txns, ${IN_FLIGHT} in flight`, value: at((round) => round.rawMs) },
      target: "raw/schedule ≥ 0.5×",
      met: ratio >= 0.5,
    },
    {
      name: `first schedule onto ${size}: first task key → every task running (CPU from master start: ${cpuSeconds(
        {
          etcd: at((round) => round.firstStartCpu.etcd),
          master: at((round) => round.firstStartCpu.master),
          workers: at((round) => round.firstStartCpu.workers),
        },
      )})`,
      value: at((round) => round.allRunningMs),
      unit: "ms",
      baseline: { name: "first task key → /R/plan", value: scheduleMs },
    },
    {
      name: `first schedule onto ${size}: etcd Txn calls, master start → /R/plan: the master's (everyone's ${at((round) => round.totalTxns).toFixed(0)}; to every task running ${at((round) => round.allRunningTxns).toFixed(0)})`,
      value: at((round) => round.masterTxns),
      unit: "Txn",
      baseline: { name: `raw write, ${TXN_OPS} ops each`, value: rawTxns },
    },
  ];
}

/** Starts the workers, waits for their registrations, then elects a master and measures its first schedule. */
async function scheduleOntoRunningWorkers(
  endpoints: string[],
  etcdPid: number | undefined,
  client: Etcd3,
  keys: KeyLayout,
  tasks: Task[],
): Promise<Omit<Round, "rawMs" | "load">> {
  // FIRST_SCHEDULE_IDLE: the workers' registrations only, held by this process.
  const registrations = IDLE ? await LeaseSession.grant(client, { ttlMs: 30_000 }) : undefined;
  for (const name of registrations ? WORKERS : []) {
    await registrations?.lease.put(keys.worker(name)).value(JSON.stringify({ name }));
  }
  const hosts = (IDLE ? [] : WORKERS).map(
    (name) =>
      new Host(
        {
          FLEET_ETCD: endpoints.join(","),
          FLEET_ROOT: keys.root,
          FLEET_TTL_MS: String(TTL_MS),
          FLEET_HOST_WORKERS: name,
          FLEET_REPORT_MS: "20",
        },
        1,
        WORKER_NICE,
      ),
  );
  const sum = (field: keyof HostReport) => hosts.reduce((total, host) => total + host.latest[field], 0);
  const masterClient = createEtcdClient({ etcd: endpoints });
  const timeline = new TxnTimeline(masterClient);
  const master = new Master({
    client: masterClient,
    root: keys.root,
    ttlMs: TTL_MS,
    intervalMs: 3_600_000,
    generator: () => tasks,
  });
  const metrics = `http://${endpoints[0]}`;
  try {
    await Promise.all(hosts.map((host) => host.ready));
    for (const host of hosts) host.go();
    await until("every worker registered", () => IDLE || sum("registered") === WORKERS.length);
    console.error("first-schedule: workers registered; electing the master…");
    const revision = Number((await client.get(keys.plan).exec()).header.revision);
    const firstKey = firstPut(client, keys.tasksPrefix, "prefix", revision);
    const planWritten = firstPut(client, keys.plan, "key", revision);
    const scheduled = new Promise<ScheduleResult>((resolve, reject) => {
      master.once("scheduled", resolve);
      master.once("scheduleFailed", ({ error }) => reject(error));
    });
    // A failed schedule ends the round instead of leaving the watches waiting.
    const unlessFailed = <T>(promise: Promise<T>) => Promise.race([promise, scheduled.then(() => promise)]);
    const txnsBefore = await txnCalls(metrics);
    const cpu = (): Cpu => ({
      etcd: cpuMs(etcdPid),
      master: (process.cpuUsage().user + process.cpuUsage().system) / 1000,
      workers: hosts.reduce((total, host) => total + cpuMs(host.child.pid), 0),
    });
    const cpuAtStart = cpu();
    const startedAt = performance.now();
    await master.start();
    const first = await unlessFailed(firstKey.at);
    const cpuAtFirst = cpu();
    const plan = await unlessFailed(planWritten.at);
    const cpuAtPlan = cpu();
    const masterTxns = timeline.count;
    const totalTxns = (await txnCalls(metrics)) - txnsBefore;
    const result = await scheduled;
    const txns = timeline.window(first, plan);
    console.error("first-schedule: scheduled; waiting for every task to run…");
    await until(
      "every task running",
      () => IDLE || (sum("running") === tasks.length && sum("assigned") === tasks.length),
    );
    const allRunningAt = performance.now();
    const cpuAtAllRunning = cpu();
    const allRunningTxns = (await txnCalls(metrics)) - txnsBefore;
    return {
      scheduleMs: plan - first,
      allRunningMs: allRunningAt - first,
      beforeFirstKeyMs: first - startedAt,
      masterTxns,
      txns,
      totalTxns,
      allRunningTxns,
      cpu: cpuBetween(cpuAtFirst, cpuAtPlan),
      firstStartCpu: cpuBetween(cpuAtStart, cpuAtAllRunning),
      result,
    };
  } finally {
    await master.stop();
    await registrations?.close();
    masterClient.close();
    await Promise.all(
      hosts.map(
        (host) =>
          new Promise<void>((resolve) => {
            if (host.child.exitCode !== null || host.child.signalCode !== null) return resolve();
            host.child.once("exit", () => resolve());
            host.child.kill("SIGTERM");
          }),
      ),
    );
    await client.delete().prefix(keys.prefix).exec();
  }
}

/** When the first put under `key` (a prefix or one key) after `revision` reached this process. */
function firstPut(
  client: Etcd3,
  key: string,
  kind: "prefix" | "key",
  revision: number,
): { at: Promise<number> } {
  const builder = client.watch().startRevision(String(revision + 1));
  const watcher = (kind === "prefix" ? builder.prefix(key) : builder.key(key)).watcher();
  const at = new Promise<number>((resolve, reject) => {
    watcher.once("put", () => resolve(performance.now()));
    watcher.on("error", reject);
  });
  // Cancelled at the first put, so the rest of the schedule's events are not decoded here.
  void at.finally(() => watcher.cancel().catch(() => undefined)).catch(() => undefined);
  return { at };
}

function cpuBetween(before: Cpu, after: Cpu): Cpu {
  return {
    etcd: after.etcd - before.etcd,
    master: after.master - before.master,
    workers: after.workers - before.workers,
  };
}

/** Where the window's CPU went, as seconds and as a share of the window on this machine's cores. */
function cpuText(round: Pick<Round, "cpu" | "scheduleMs">): string {
  const { etcd, master, workers } = round.cpu;
  const cores = (etcd + master + workers) / round.scheduleMs;
  return `CPU in the window: ${cpuSeconds(round.cpu)} (${cores.toFixed(1)} cores busy)`;
}

function cpuSeconds({ etcd, master, workers }: Cpu): string {
  const seconds = (ms: number) => (ms / 1000).toFixed(1);
  return `etcd ${seconds(etcd)} s, master ${seconds(master)} s, workers ${seconds(workers)} s`;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

async function until(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + LIMIT_MS;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`first-schedule bench: no ${what} within ${LIMIT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const etcd = await startEtcd();
  try {
    printReport(
      "escheduler first-schedule benchmark",
      await benchFirstSchedule([etcd.hostPort], etcd.process?.pid),
    );
  } finally {
    await etcd.destroy();
  }
}
