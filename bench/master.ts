/**
 * Master benchmark: the first schedule of 50,000 tasks over 4 workers, next to the raw time to write
 * the same keys and values in 128-operation transactions with 4 in flight (same run, same etcd, fresh
 * roots), and the process's peak memory during the schedule. Alone: `npx tsx bench/master.ts`.
 */
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import type { Etcd3, IRequestOp } from "etcd3";
import { startEtcd } from "../src/cli/etcd-process.js";
import { Master, type ScheduleResult } from "../src/master/index.js";
import { createEtcdClient, type KeyLayout, keyLayout, LeaseSession, type Task } from "../src/node/index.js";
import { type BenchRow, printReport } from "./report.js";

export const TASKS = 50_000;
export const WORKERS = ["w1", "w2", "w3", "w4"];
export const TXN_OPS = 128;
export const IN_FLIGHT = 4;
/** Each figure is the best of this many runs, so one slow disk flush (or a busy neighbour) does not decide it. */
const ROUNDS = 4;
const MB = 1024 * 1024;

export async function benchMaster(endpoints: string[]): Promise<BenchRow[]> {
  const client = createEtcdClient({ etcd: endpoints });
  const tasks: Task[] = Array.from({ length: TASKS }, (_, i) => ({ id: `task-${i}`, payload: { shard: i } }));
  try {
    await rawWrite(client, freshRoot("warm-up"), tasks.slice(0, 5_000));
    let rawMs = Number.POSITIVE_INFINITY;
    let best: (ScheduleResult & { peakRssMB: number; peakHeapMB: number }) | undefined;
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate the order: etcd's store grows with every round, which must not favour either side.
      const runSchedule = async () => {
        const run = await firstSchedule(client, freshRoot("schedule"), tasks);
        if (!best || run.durationMs < best.durationMs) best = run;
      };
      const runRaw = async () => {
        rawMs = Math.min(rawMs, await rawWrite(client, freshRoot("raw"), tasks));
      };
      for (const step of round % 2 === 0 ? [runRaw, runSchedule] : [runSchedule, runRaw]) await step();
    }
    const schedule = best as NonNullable<typeof best>;
    const phases = `generate ${schedule.generateMs} / read ${schedule.readMs} / plan ${schedule.planMs} / apply ${schedule.applyMs} ms`;
    return [
      {
        name: `master first schedule, ${TASKS} tasks × ${WORKERS.length} workers (${phases})`,
        value: schedule.durationMs,
        unit: "ms",
        baseline: { name: `raw ${TXN_OPS}-op txns, ${IN_FLIGHT} in flight`, value: rawMs },
        target: "≤ 2× baseline",
        met: schedule.durationMs <= 2 * rawMs,
      },
      {
        name: `master peak RSS during a ${TASKS}-task schedule`,
        value: schedule.peakRssMB,
        unit: "MB",
        target: "< 300 MB",
        met: schedule.peakRssMB < 300,
      },
      {
        name: `master peak heap used during a ${TASKS}-task schedule`,
        value: schedule.peakHeapMB,
        unit: "MB",
        target: "< 300 MB",
        met: schedule.peakHeapMB < 300,
      },
    ];
  } finally {
    client.close();
  }
}

export function freshRoot(label: string): KeyLayout {
  return keyLayout(`bench-master-${label}-${process.pid}-${Date.now()}`);
}

/** The same keys and values as the schedule writes, spread over the workers the way the planner would. */
export async function rawWrite(client: Etcd3, keys: KeyLayout, tasks: Task[]): Promise<number> {
  try {
    const started = performance.now();
    const ops: IRequestOp[] = tasks.map((task, i) => ({
      request_put: {
        key: Buffer.from(keys.task(WORKERS[i % WORKERS.length], task.id)),
        value: Buffer.from(JSON.stringify(task)),
      },
    }));
    let next = 0;
    const lane = async () => {
      while (next < ops.length) {
        const batch = ops.slice(next, next + TXN_OPS);
        next += TXN_OPS;
        await client.kv.txn({ compare: [], success: batch, failure: [] });
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
    return performance.now() - started;
  } finally {
    await client.delete().prefix(keys.prefix).exec();
  }
}

/** Registers the workers, starts a master and waits for its first schedule while sampling memory. */
async function firstSchedule(
  client: Etcd3,
  keys: KeyLayout,
  tasks: Task[],
): Promise<ScheduleResult & { peakRssMB: number; peakHeapMB: number }> {
  const session = await LeaseSession.grant(client, { ttlMs: 30_000 });
  for (const name of WORKERS) await session.lease.put(keys.worker(name)).value(JSON.stringify({ name }));
  const master = new Master({ client, root: keys.root, ttlMs: 10_000, generator: () => tasks });
  (globalThis as { gc?: () => void }).gc?.();
  let peakRss = 0;
  let peakHeap = 0;
  const sample = () => {
    const usage = process.memoryUsage();
    peakRss = Math.max(peakRss, usage.rss);
    peakHeap = Math.max(peakHeap, usage.heapUsed);
  };
  const sampler = setInterval(sample, 10);
  try {
    const scheduled = new Promise<ScheduleResult>((resolve, reject) => {
      master.once("scheduled", resolve);
      master.once("scheduleFailed", ({ error }) => reject(error));
    });
    await master.start();
    const result = await scheduled;
    sample();
    return { ...result, peakRssMB: peakRss / MB, peakHeapMB: peakHeap / MB };
  } finally {
    clearInterval(sampler);
    await master.stop();
    await client.delete().prefix(keys.prefix).exec();
    await session.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const etcd = await startEtcd();
  try {
    printReport("escheduler master benchmark", await benchMaster([etcd.hostPort]));
  } finally {
    await etcd.destroy();
  }
}
