/**
 * Planner benchmark: plan time and heap for a first plan and a one-worker join, at 10k tasks × 100
 * workers and 100k tasks × 1,000 workers, 50 groups, 10% of the tasks keyed (5 tasks per key); then
 * the placement-constraint cases of planner-constraints.ts.
 * Run alone with `npx tsx bench/planner.ts` (add `node --expose-gc --import tsx` for steadier heap figures).
 */
import { pathToFileURL } from "node:url";
import { plan } from "../src/balancer/index.js";
import type { Task } from "../src/balancer/types.js";
import { benchConstrainedPlanner } from "./planner-constraints.js";
import type { BenchRow } from "./report.js";

export interface PlannerBenchRow extends BenchRow {
  /** Wall-clock time, median of the runs. */
  ms: number;
  /** CPU time of this process over the same run (less sensitive to a busy machine). */
  cpuMs: number;
  /** Heap in use after the plan (its result alive) minus before, in MiB. */
  heapMB: number;
}

const TARGET_MS = 1000;
const RUNS = 3;

function fleet(workerCount: number): string[] {
  return Array.from({ length: workerCount }, (_, i) => `worker-${String(i).padStart(4, "0")}`);
}

function generate(taskCount: number): Task[] {
  return Array.from({ length: taskCount }, (_, i) => {
    const task: Task = { id: `task-${i}`, group: `group-${i % 50}` };
    if (i % 10 === 0) task.key = `key-${Math.floor(i / 50)}`;
    return task;
  });
}

export function measure(run: () => unknown): { ms: number; cpuMs: number; heapMB: number } {
  const gc = (globalThis as { gc?: () => void }).gc;
  const samples: Array<{ ms: number; cpuMs: number }> = [];
  let heapMB = 0;
  for (let i = 0; i < RUNS; i++) {
    gc?.();
    const heapBefore = process.memoryUsage().heapUsed;
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    const result = run();
    const ms = performance.now() - started;
    const cpu = process.cpuUsage(cpuBefore);
    samples.push({ ms, cpuMs: (cpu.user + cpu.system) / 1000 });
    heapMB = Math.max(heapMB, (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20);
    if (result === undefined) throw new Error("no plan");
  }
  samples.sort((a, b) => a.ms - b.ms);
  return { ...samples[Math.floor(RUNS / 2)], heapMB };
}

export async function benchPlanner(): Promise<PlannerBenchRow[]> {
  plan({ workers: fleet(10), tasks: generate(1_000) }); // warm the JIT like a running master
  const rows: PlannerBenchRow[] = [];
  for (const [taskCount, workerCount] of [
    [10_000, 100],
    [100_000, 1_000],
  ] as const) {
    const workers = fleet(workerCount);
    const tasks = generate(taskCount);
    const label = `plan ${taskCount / 1000}k tasks × ${workerCount} workers`;
    const first = plan({ workers, tasks });
    const joined = [...workers, "worker-new"];
    const cases = [
      [`${label}, first plan`, () => plan({ workers, tasks })],
      [`${label}, one worker joins`, () => plan({ workers: joined, tasks, current: first.assignment })],
    ] as const;
    for (const [name, run] of cases) {
      const { ms, cpuMs, heapMB } = measure(run);
      const target = taskCount >= 100_000 ? TARGET_MS : undefined;
      rows.push({
        name,
        ms,
        cpuMs,
        heapMB,
        value: ms,
        unit: "ms",
        ...(target ? { target: `< ${target} ms`, met: ms < target } : {}),
      });
    }
  }
  return [...rows, ...benchConstrainedPlanner()];
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const rows = await benchPlanner();
  console.table(
    rows.map(({ name, ms, cpuMs, heapMB, target, met }) => ({
      case: name,
      ms: Number(ms.toFixed(1)),
      cpuMs: Number(cpuMs.toFixed(1)),
      heapMB: Number(heapMB.toFixed(1)),
      target: target ?? "",
      met: met === undefined ? "" : met ? "yes" : "NO",
    })),
  );
}
