/**
 * Console benchmark at the scale, 1,000 workers × 100,000 tasks: the cost of one snapshot
 * (next to what `escheduler status` pays for the same read), its size on the wire, what 100 viewers
 * asking at once cost (one read of the cluster, not 100), and a search. Alone: `npx tsx bench/console.ts`.
 */
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import type { Etcd3 } from "etcd3";
import { startEtcd } from "../src/cli/etcd-process.js";
import { readStatusReport } from "../src/cli/status.js";
import { ConsoleFeed } from "../src/console/feed.js";
import { createEtcdClient, type KeyLayout, keyLayout, silentLogger } from "../src/node/index.js";
import { type BenchRow, printReport } from "./report.js";

const WORKERS = 1_000;
const TASKS = 100_000;
const VIEWERS = 100;
const BATCH = 128;

export async function benchConsole(endpoints: string[]): Promise<BenchRow[]> {
  const client = createEtcdClient({ etcd: endpoints });
  const keys = keyLayout(`bench-console-${process.pid}-${Date.now()}`);
  try {
    const lease = await seed(client, keys);
    const statusStarted = performance.now();
    await readStatusReport(client, keys.root);
    const statusMs = performance.now() - statusStarted;

    const feed = new ConsoleFeed({ client, root: keys.root, logger: silentLogger, admin: false });
    const buildStarted = performance.now();
    const snapshot = await feed.snapshot();
    const buildMs = performance.now() - buildStarted;
    const bytes = Buffer.byteLength(JSON.stringify(snapshot));

    // Fresh revision, then VIEWERS at once: they share one read.
    const first = "worker-0000";
    await client
      .put(keys.worker(first))
      .lease(lease)
      .value(
        JSON.stringify({
          name: first,
          host: "bench",
          pid: 0,
          version: "1",
          startedAt: new Date().toISOString(),
        }),
      );
    const before = feed.builds;
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const viewersStarted = performance.now();
    await Promise.all(Array.from({ length: VIEWERS }, () => feed.snapshot()));
    const viewersMs = performance.now() - viewersStarted;
    const reads = feed.builds - before;

    const searchStarted = performance.now();
    await feed.search("task-054321");
    const searchMs = performance.now() - searchStarted;
    const scale = `${WORKERS / 1000}k workers × ${TASKS / 1000}k tasks`;
    return [
      {
        name: `console snapshot build, ${scale}`,
        value: buildMs,
        unit: "ms",
        baseline: { name: "escheduler status's read", value: statusMs },
        target: "< 2 s (the refresh period)",
        met: buildMs < 2_000,
      },
      { name: `console snapshot size, ${scale}`, value: bytes / 1024, unit: "KiB" },
      {
        name: `console: ${VIEWERS} viewers at once, ${scale} (${reads} read of the cluster)`,
        value: viewersMs,
        unit: "ms",
        baseline: { name: "one snapshot build", value: buildMs },
        target: "1 read",
        met: reads === 1,
      },
      {
        name: `console search in ${scale}`,
        value: searchMs,
        unit: "ms",
        target: "< 100 ms",
        met: searchMs < 100,
      },
    ];
  } finally {
    await client.delete().prefix(keys.prefix).exec();
    client.close();
  }
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
    const name = `worker-${String(w).padStart(4, "0")}`;
    puts.push([
      keys.worker(name),
      JSON.stringify({ name, host: "bench", pid: w, version: "0", startedAt: since }),
      lease,
    ]);
  }
  for (let t = 0; t < TASKS; t++) {
    const id = `task-${String(t).padStart(6, "0")}`;
    const worker = `worker-${String(t % WORKERS).padStart(4, "0")}`;
    const failed = t % 100 === 0;
    puts.push([keys.task(worker, id), JSON.stringify({ id, group: `g${t % 2}` })]);
    puts.push([
      keys.status(worker, id),
      JSON.stringify({
        state: failed ? "failed" : "running",
        attempt: 1,
        since,
        ...(failed ? { error: "boom" } : {}),
      }),
      lease,
    ]);
  }
  const batches: (typeof puts)[] = [];
  for (let i = 0; i < puts.length; i += BATCH) batches.push(puts.slice(i, i + BATCH));
  const writeNext = async (): Promise<void> => {
    for (let batch = batches.pop(); batch; batch = batches.pop()) {
      await client.kv.txn({
        compare: [],
        success: batch.map(([key, value, lease]) => ({
          request_put: { key: Buffer.from(key), value: Buffer.from(value), ...(lease ? { lease } : {}) },
        })),
        failure: [],
      });
    }
  };
  await Promise.all(Array.from({ length: 8 }, writeNext));
  return lease;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const etcd = await startEtcd();
  try {
    printReport("escheduler console benchmark", await benchConsole([etcd.hostPort]));
  } finally {
    await etcd.destroy();
  }
}
