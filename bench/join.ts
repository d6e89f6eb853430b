/**
 * A schedule after one worker joins, at the scale (1,000 registered workers × 100,000 tasks):
 * from the new registration (the trigger) to the schedule's last write (`/R/plan`) and to the last
 * task written to the new worker (its hand-offs), the Range and Txn calls etcd served meanwhile (its
 * own metrics), and the master's peak RSS over its whole life (VmHWM; first schedule included). The
 * master is a real `escheduler master` process (this checkout's dist/); workers are cheap leased keys
 * and statuses written by the bench; a simulated old owner deletes a status once its task key is
 * removed. JOIN_WORKERS / JOIN_TASKS size it. Alone: `npx tsx bench/join.ts` (after `npm run build`).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Etcd3 } from "etcd3";
import { startEtcd } from "../src/cli/etcd-process.js";
import { createEtcdClient, type KeyLayout, keyLayout, type Task } from "../src/node/index.js";
import { type BenchRow, printReport } from "./report.js";

const WORKERS = Number(process.env.JOIN_WORKERS ?? 1_000);
const TASKS = Number(process.env.JOIN_TASKS ?? 100_000);
const BATCH = 128;
const MB = 1024 * 1024;
const BIN = fileURLToPath(new URL("../bin/escheduler.js", import.meta.url));

const workerName = (i: number) => `worker-${String(i).padStart(4, "0")}`;
const taskId = (t: number) => `task-${String(t).padStart(6, "0")}`;

/** Figures a master logs with "schedule applied". */
interface Applied {
  reasons: string[];
  moved: number;
  durationMs: number;
  generateMs: number;
  readMs: number;
  planMs: number;
  applyMs: number;
}

export async function benchJoin(endpoints: string[]): Promise<BenchRow[]> {
  const bench = createEtcdClient({ etcd: endpoints });
  const keys = keyLayout(`bench-join-${process.pid}-${Date.now()}`);
  const folder = mkdtempSync(join(tmpdir(), "escheduler-join-"));
  const generator = join(folder, "generator.mjs");
  writeFileSync(
    generator,
    `export default () => Array.from({ length: ${TASKS} }, (_, t) => ({ id: "task-" + String(t).padStart(6, "0") }));\n`,
  );
  const { ID: lease } = await bench.leaseClient.leaseGrant({ TTL: 600 });
  const stopOwners = await simulateOldOwners(bench, keys);
  let master: ChildProcess | undefined;
  try {
    await seed(bench, keys, lease);
    master = spawn(
      process.execPath,
      [
        // JOIN_MASTER_NODE_OPTIONS: extra flags for the master's node (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof").
        ...(process.env.JOIN_MASTER_NODE_OPTIONS?.split(" ").filter(Boolean) ?? []),
        BIN,
        "master",
        "--etcd",
        endpoints.join(","),
        "--root",
        keys.root,
        "--name",
        "m1",
        "--generator",
        generator,
        "--rebalance-wait",
        "0ms",
        "--interval",
        "1h",
        "--ttl",
        "10s",
        "--log-level",
        "info",
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    const applied = schedulesOf(master);
    const elected = await applied.next();
    const peakAfterFirstMB = peakRss(master.pid as number) / MB;

    const joiner = workerName(WORKERS);
    const written = countPuts(bench, keys.workerTasksPrefix(joiner));
    const plans = countPuts(bench, keys.plan);
    const callsBefore = await etcdCalls(endpoints[0] as string);
    const triggeredAt = performance.now();
    await bench
      .put(keys.worker(joiner))
      .value(JSON.stringify({ name: joiner }))
      .lease(lease);
    const planAt = await plans.until(1);
    const schedule = await applied.next();
    const lastPutAt = await written.until(schedule.moved);
    const calls = await etcdCalls(endpoints[0] as string);
    const peakRssMB = peakRss(master.pid as number) / MB;
    const scale = `${WORKERS} workers × ${TASKS / 1000}k tasks`;
    const phases = (run: Applied) =>
      `generate ${run.generateMs} / read ${run.readMs} / plan ${run.planMs} / apply ${run.applyMs} ms`;
    return [
      {
        name: `join: a worker joins ${scale} → /R/plan (${phases(schedule)}; ${schedule.moved} moved)`,
        value: planAt - triggeredAt,
        unit: "ms",
        target: "≤ 1 s",
        met: planAt - triggeredAt <= 1_000,
      },
      {
        name: "join: the same → last task written to the new worker (hand-offs done)",
        value: lastPutAt - triggeredAt,
        unit: "ms",
        baseline: { name: "→ /R/plan", value: planAt - triggeredAt },
      },
      {
        name: `join: etcd Range calls from the join to the last hand-off (Txn: ${calls.txn - callsBefore.txn})`,
        value: calls.range - callsBefore.range,
        unit: "calls",
      },
      {
        name: `join: the master's first schedule at ${scale} (${phases(elected)})`,
        value: elected.durationMs,
        unit: "ms",
      },
      {
        name: `join: the master process's peak RSS (VmHWM), ${scale} (${peakAfterFirstMB.toFixed(0)} MB by the end of its first schedule)`,
        value: peakRssMB,
        unit: "MB",
        target: "≤ 400 MB",
        met: peakRssMB <= 400,
      },
    ];
  } finally {
    master?.kill("SIGTERM");
    if (master && master.exitCode === null) await new Promise((resolve) => master?.once("exit", resolve));
    stopOwners();
    await bench.delete().prefix(keys.prefix).exec();
    await bench.leaseClient.leaseRevoke({ ID: lease }).catch(() => undefined);
    bench.close();
    rmSync(folder, { recursive: true, force: true });
  }
}

/** The master's "schedule applied" log lines, one at a time. */
function schedulesOf(master: ChildProcess): { next(): Promise<Applied> } {
  const seen: Applied[] = [];
  const waiting: Array<() => void> = [];
  createInterface({ input: master.stdout as NodeJS.ReadableStream }).on("line", (line) => {
    if (!line.includes('"schedule applied"')) return;
    seen.push(JSON.parse(line) as Applied);
    for (const wake of waiting.splice(0)) wake();
  });
  let taken = 0;
  return {
    async next() {
      while (seen.length <= taken) await new Promise<void>((wake) => waiting.push(wake));
      return seen[taken++] as Applied;
    },
  };
}

/** Range and Txn calls etcd has served so far (its gRPC metrics). */
async function etcdCalls(endpoint: string): Promise<{ range: number; txn: number }> {
  const text = await (await fetch(`http://${endpoint}/metrics`)).text();
  const count = (method: string) =>
    Number(
      new RegExp(
        `^grpc_server_handled_total\\{grpc_code="OK",grpc_method="${method}",grpc_service="etcdserverpb.KV",grpc_type="unary"\\} (\\S+)$`,
        "m",
      ).exec(text)?.[1] ?? NaN,
    );
  return { range: count("Range"), txn: count("Txn") };
}

/** A process's peak resident set (VmHWM), in bytes. */
function peakRss(pid: number): number {
  const kb = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  return Number(kb ?? NaN) * 1024;
}

/** Registrations and statuses under `lease`, tasks dealt round-robin (the balance a plan keeps). */
async function seed(client: Etcd3, keys: KeyLayout, lease: string): Promise<void> {
  const puts: Array<[string, string, string?]> = [];
  for (let w = 0; w < WORKERS; w++)
    puts.push([keys.worker(workerName(w)), JSON.stringify({ name: workerName(w) }), lease]);
  const since = new Date().toISOString();
  for (let t = 0; t < TASKS; t++) {
    const worker = workerName(t % WORKERS);
    const task: Task = { id: taskId(t) };
    puts.push([keys.task(worker, task.id), JSON.stringify(task)]);
    puts.push([keys.status(worker, task.id), JSON.stringify({ state: "running", attempt: 1, since }), lease]);
  }
  let next = 0;
  const lane = async () => {
    while (next < puts.length) {
      const batch = puts.slice(next, next + BATCH);
      next += BATCH;
      const request = {
        compare: [],
        success: batch.map(([key, value, leased]) => ({
          request_put: {
            key: Buffer.from(key),
            value: Buffer.from(value),
            ...(leased ? { lease: leased } : {}),
          },
        })),
        failure: [],
      };
      // A loaded machine's etcd may time a request out: the same puts again are harmless.
      for (let attempt = 1; ; attempt++) {
        try {
          await client.kv.txn(request);
          break;
        } catch (error) {
          if (attempt >= 5) throw error;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: 8 }, lane));
}

/** The old owners: a task key removed → its status deleted (the task stopped). Returns the stop. */
async function simulateOldOwners(client: Etcd3, keys: KeyLayout): Promise<() => void> {
  const watcher = await client.watch().prefix(keys.tasksPrefix).create();
  watcher.on("delete", (kv) => {
    const parts = keys.parseTask(kv.key.toString());
    if (parts)
      void client
        .delete()
        .key(keys.status(parts.worker, parts.taskId))
        .exec()
        .catch(() => undefined);
  });
  return () => void watcher.cancel();
}

/** Counts puts under `prefix`; `until(n)` resolves with the time of the n-th. */
function countPuts(client: Etcd3, prefix: string): { until(count: number): Promise<number> } {
  let seen = 0;
  let lastAt = 0;
  const waiting: Array<() => void> = [];
  const created = client.watch().prefix(prefix).create();
  void created.then((watcher) =>
    watcher.on("put", () => {
      seen++;
      lastAt = performance.now();
      for (const wake of waiting.splice(0)) wake();
    }),
  );
  return {
    async until(count) {
      while (seen < count) await new Promise<void>((wake) => waiting.push(wake));
      void (await created).cancel();
      return lastAt;
    },
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const etcd = await startEtcd();
  try {
    printReport("escheduler join benchmark", await benchJoin([etcd.hostPort]));
  } finally {
    await etcd.destroy();
  }
}
