/**
 * Console benchmark at the scale, 1,000 workers × 100,000 tasks (CONSOLE_WORKERS and
 * CONSOLE_TASKS size it): the time from a change (a status put, a worker registration) to the
 * snapshot that shows it reaching every viewer, and the console process's memory, for the console fed
 * by its watch beside the polling console it replaced (bench/console-polling.ts), one after the other
 * over the same data. Each console runs in a process of its own (bench/console-host.ts), its viewers
 * are real event streams. Alone: `npx tsx bench/console.ts`.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath, pathToFileURL } from "node:url";
import { createInterface } from "node:readline";
import { performance } from "node:perf_hooks";
import type { Etcd3 } from "etcd3";
import { startEtcd } from "../src/cli/etcd-process.js";
import { createEtcdClient, type KeyLayout, keyLayout } from "../src/node/index.js";
import { type BenchRow, printReport } from "./report.js";

const WORKERS = Number(process.env.CONSOLE_WORKERS ?? 1_000);
const TASKS = Number(process.env.CONSOLE_TASKS ?? 100_000);
const VIEWERS = 10;
/** Changes per console, alternately a status put and a registration. */
const CHANGES = 6;
/** Status changes in one burst (as when a tenth of the fleet restarts its tasks). */
const BURST = 10_000;
const BATCH = 128;
const TARGET_MS = 2_000;
const HOST = fileURLToPath(new URL("./console-host.ts", import.meta.url));

type Mode = "polling" | "watch";
interface Figures {
  firstMs: number;
  status: number[];
  registration: number[];
  /** From the burst's last commit to every viewer showing it. */
  burstMs: number;
  reads: number;
  rssMB: number;
  peakMB: number;
  heapMB: number;
  snapshotKiB: number;
  searchMs?: number;
}

export async function benchConsole(endpoints: string[]): Promise<BenchRow[]> {
  const client = createEtcdClient({ etcd: endpoints });
  const keys = keyLayout(`bench-console-${process.pid}-${Date.now()}`);
  try {
    const lease = await seed(client, keys);
    const polling = await measure("polling", endpoints, client, keys, lease);
    const watch = await measure("watch", endpoints, client, keys, lease);
    return rows(watch, polling);
  } finally {
    await client.delete().prefix(keys.prefix).exec();
    client.close();
  }
}

function rows(watch: Figures, polling: Figures): BenchRow[] {
  const scale = `${WORKERS / 1000}k workers × ${TASKS / 1000}k tasks`;
  const latency = (kind: "status" | "registration", what: string): BenchRow[] => [
    {
      name: `console: ${what} → every viewer (${VIEWERS}), median of ${watch[kind].length}, ${scale}`,
      value: median(watch[kind]),
      unit: "ms",
      baseline: { name: "polling console, median", value: median(polling[kind]) },
      target: `≤ ${TARGET_MS} ms`,
      met: median(watch[kind]) <= TARGET_MS,
    },
    {
      name: `console: ${what} → every viewer, worst of ${watch[kind].length}, ${scale}`,
      value: Math.max(...watch[kind]),
      unit: "ms",
      baseline: { name: "polling console, worst", value: Math.max(...polling[kind]) },
      target: `≤ ${TARGET_MS} ms`,
      met: Math.max(...watch[kind]) <= TARGET_MS,
    },
  ];
  return [
    ...latency("status", "a status put"),
    ...latency("registration", "a worker registration"),
    {
      name: `console: ${BURST / 1000}k status changes in a burst, its last commit → every viewer, ${scale}`,
      value: watch.burstMs,
      unit: "ms",
      baseline: { name: "polling console", value: polling.burstMs },
      target: `≤ ${TARGET_MS} ms`,
      met: watch.burstMs <= TARGET_MS,
    },
    {
      name: `console: first snapshot for a viewer (the watch's one read), ${scale}`,
      value: watch.firstMs,
      unit: "ms",
      baseline: { name: "polling console", value: polling.firstMs },
    },
    {
      name: `console: full reads of the cluster for ${CHANGES} changes and ${VIEWERS} viewers`,
      value: watch.reads,
      unit: "reads",
      baseline: { name: "polling console", value: polling.reads },
      target: "1",
      met: watch.reads === 1,
    },
    { name: `console snapshot size, ${scale}`, value: watch.snapshotKiB, unit: "KiB" },
    {
      name: `console search in ${scale} (from memory)`,
      value: watch.searchMs ?? 0,
      unit: "ms",
      target: "< 100 ms",
      met: (watch.searchMs ?? 0) < 100,
    },
    {
      name: `console process RSS after the changes, ${scale}`,
      value: watch.rssMB,
      unit: "MB",
      baseline: { name: "polling console", value: polling.rssMB },
    },
    {
      name: `console process heap after a full GC (what it keeps), ${scale}`,
      value: watch.heapMB,
      unit: "MB",
      baseline: { name: "polling console", value: polling.heapMB },
    },
    {
      name: `console process peak RSS, ${scale}`,
      value: watch.peakMB,
      unit: "MB",
      baseline: { name: "polling console", value: polling.peakMB },
    },
  ];
}

/** One console in its own process: its first snapshot, then CHANGES changes, each timed to every viewer. */
async function measure(
  mode: Mode,
  endpoints: string[],
  client: Etcd3,
  keys: KeyLayout,
  lease: string,
): Promise<Figures> {
  const host = spawn(
    process.execPath,
    ["--expose-gc", "--import", "tsx", HOST, mode, endpoints.join(","), keys.root],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  try {
    const [line] = (await once(createInterface({ input: host.stdout! }), "line")) as [string];
    const base = `http://127.0.0.1:${(JSON.parse(line) as { port: number }).port}`;
    const opened = performance.now();
    const viewers = await Promise.all(Array.from({ length: VIEWERS }, () => openViewer(`${base}/events`)));
    await until(() => viewers.every((viewer) => viewer.revision > 0));
    const firstMs = performance.now() - opened;
    const figures: Figures = {
      firstMs,
      status: [],
      registration: [],
      burstMs: 0,
      reads: 0,
      rssMB: 0,
      peakMB: 0,
      heapMB: 0,
      snapshotKiB: 0,
    };
    for (let i = 0; i < CHANGES; i++) {
      // A change lands at any moment of a poll period.
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 1_000));
      const kind = i % 2 === 0 ? "status" : "registration";
      const started = performance.now();
      const revision =
        kind === "status" ? await putStatus(client, keys, lease, i) : await register(client, keys, lease, i);
      await until(() => viewers.every((viewer) => viewer.revision >= revision));
      figures[kind].push(performance.now() - started);
    }
    const lastRevision = await burst(client, keys, lease);
    const burstEnded = performance.now();
    await until(() => viewers.every((viewer) => viewer.revision >= lastRevision));
    figures.burstMs = performance.now() - burstEnded;
    if (mode === "watch") {
      const searchStarted = performance.now();
      await (await fetch(`${base}/search?q=task-054321`)).json();
      figures.searchMs = performance.now() - searchStarted;
    }
    const stats = (await (await fetch(`${base}/stats`)).json()) as Pick<
      Figures,
      "reads" | "rssMB" | "peakMB"
    >;
    for (const viewer of viewers) viewer.close();
    return { ...figures, ...stats, snapshotKiB: (viewers[0]?.bytes ?? 0) / 1024 };
  } finally {
    host.kill("SIGTERM");
    await once(host, "exit");
  }
}

/** An event stream whose newest snapshot's revision (and size) is kept; the JSON is not parsed whole. */
async function openViewer(url: string) {
  const abort = new AbortController();
  const response = await fetch(url, { signal: abort.signal });
  const viewer = { revision: 0, bytes: 0, close: () => abort.abort() };
  void (async () => {
    const decoder = new TextDecoder();
    let text = "";
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      text += decoder.decode(chunk, { stream: true });
      for (let end = text.indexOf("\n\n"); end >= 0; end = text.indexOf("\n\n")) {
        const event = text.slice(0, end);
        text = text.slice(end + 2);
        if (!event.startsWith("event: snapshot")) continue;
        viewer.revision = Number(/"revision":(\d+)/.exec(event.slice(0, 2_000))?.[1] ?? 0);
        viewer.bytes = event.length;
      }
    }
  })().catch(() => undefined);
  return viewer;
}

async function until(check: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`console bench: no snapshot in ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Task 1's status flips between failed and running; resolves with the put's revision. */
async function putStatus(client: Etcd3, keys: KeyLayout, lease: string, i: number): Promise<number> {
  const state = i % 4 === 0 ? "failed" : "running";
  const value = JSON.stringify({ state, attempt: i + 1, since: new Date().toISOString(), error: "bench" });
  const put = await client
    .put(keys.status(workerName(1), "task-000001"))
    .value(value)
    .lease(lease);
  return Number(put.header.revision);
}

async function register(client: Etcd3, keys: KeyLayout, lease: string, i: number): Promise<number> {
  const name = `joined-${i}`;
  const value = JSON.stringify({
    name,
    host: "bench",
    pid: i,
    version: "1",
    startedAt: new Date().toISOString(),
  });
  const put = await client.put(keys.worker(name)).value(value).lease(lease);
  return Number(put.header.revision);
}

/** BURST statuses rewritten, 128 per transaction from 8 writers; resolves with the newest commit's revision. */
async function burst(client: Etcd3, keys: KeyLayout, lease: string): Promise<number> {
  const since = new Date().toISOString();
  const puts: [string, string, string][] = [];
  for (let t = 0; t < BURST; t++) {
    const id = `task-${String(t).padStart(6, "0")}`;
    const value = JSON.stringify({ state: "starting", attempt: 2, since });
    puts.push([keys.status(workerName(t % WORKERS), id), value, lease]);
  }
  return write(client, puts);
}

function workerName(w: number): string {
  return `worker-${String(w).padStart(4, "0")}`;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

/**
 * Workers, tasks in two groups and their statuses (one in a hundred failed), written 128 per
 * transaction; registrations and statuses under one lease, as workers write them. Resolves with it.
 */
export async function seed(client: Etcd3, keys: KeyLayout): Promise<string> {
  const since = new Date().toISOString();
  const { ID: lease } = await client.leaseClient.leaseGrant({ TTL: 600 });
  const puts: [string, string, string?][] = [];
  for (let w = 0; w < WORKERS; w++) {
    const name = workerName(w);
    puts.push([
      keys.worker(name),
      JSON.stringify({ name, host: "bench", pid: w, version: "0", startedAt: since }),
      lease,
    ]);
  }
  for (let t = 0; t < TASKS; t++) {
    const id = `task-${String(t).padStart(6, "0")}`;
    const worker = workerName(t % WORKERS);
    const failed = t % 100 === 0;
    puts.push([keys.task(worker, id), JSON.stringify({ id, group: `g${t % 2}` })]);
    const status = {
      state: failed ? "failed" : "running",
      attempt: 1,
      since,
      ...(failed ? { error: "boom" } : {}),
    };
    puts.push([keys.status(worker, id), JSON.stringify(status), lease]);
  }
  await write(client, puts);
  return lease;
}

/** Writes [key, value, lease?] puts 128 per transaction from 8 writers; resolves with the newest revision. */
async function write(client: Etcd3, puts: [string, string, string?][]): Promise<number> {
  const batches: (typeof puts)[] = [];
  for (let i = 0; i < puts.length; i += BATCH) batches.push(puts.slice(i, i + BATCH));
  let newest = 0;
  const writeNext = async (): Promise<void> => {
    for (let batch = batches.pop(); batch; batch = batches.pop()) {
      const response = await client.kv.txn({
        compare: [],
        success: batch.map(([key, value, lease]) => ({
          request_put: { key: Buffer.from(key), value: Buffer.from(value), ...(lease ? { lease } : {}) },
        })),
        failure: [],
      });
      newest = Math.max(newest, Number(response.header.revision));
    }
  };
  await Promise.all(Array.from({ length: 8 }, writeNext));
  return newest;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const etcd = await startEtcd();
  try {
    printReport("escheduler console benchmark", await benchConsole([etcd.hostPort]));
  } finally {
    await etcd.destroy();
  }
}
