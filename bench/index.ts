/**
 * `npm run bench`: one table, every figure next to its baseline from the same run, on one throw-away
 * etcd: the first schedule vs raw etcd writes, crash failover and graceful leave vs the TTL, plan
 * times vs a naive round-robin, put→start vs a bare watch, a rolling update with the default settings
 * (hand-off wait vs immediate), the web console at 1k workers × 100k tasks, then peak memory vs idle
 * processes, the first schedule onto running workers (worker processes started first), and the fleet at
 * scale (500 library workers × 50,000 tasks on an etcd of its own).
 * `npm run bench -- rolling planner` runs only the sections named (`npm run bench -- fleet` alone).
 * Benchmarks are not tests: they print numbers and never fail because the machine is slow.
 */
import { startEtcd } from "../src/cli/etcd-process.js";
import { benchConsole } from "./console.js";
import { benchFailover } from "./failover.js";
import { benchFirstSchedule } from "./first-schedule.js";
import { benchFleet } from "./fleet-scale.js";
import { benchJoin } from "./join.js";
import { benchMaster } from "./master.js";
import { benchPlanner, type PlannerBenchRow } from "./planner.js";
import { type BenchRow, printReport } from "./report.js";
import { benchRolling } from "./rolling.js";
import { benchWorker } from "./worker.js";

/**
 * The floor any planner pays: dealing the same task ids round-robin into per-worker lists (no
 * balance by group, no stickiness, no keys). Median of 3 runs, in ms.
 */
function roundRobinMs(taskCount: number, workerCount: number): number {
  const ids = Array.from({ length: taskCount }, (_, i) => `task-${i}`);
  const workers = Array.from({ length: workerCount }, (_, i) => `worker-${String(i).padStart(4, "0")}`);
  const times: number[] = [];
  for (let run = 0; run < 3; run++) {
    const started = performance.now();
    const assignment = new Map<string, string[]>(workers.map((worker) => [worker, []]));
    ids.forEach((id, i) => assignment.get(workers[i % workerCount])?.push(id));
    times.push(performance.now() - started);
  }
  return times.sort((a, b) => a - b)[1];
}

/** Planner rows as report rows: CPU time and heap in the name, a round-robin of the same size as baseline. */
function plannerRows(rows: PlannerBenchRow[]): BenchRow[] {
  return rows.map(({ name, value, unit, target, met, cpuMs, heapMB }) => {
    const size = /plan (\d+)k tasks × (\d+) workers/.exec(name);
    const baseline = size
      ? { name: "round-robin deal, same size", value: roundRobinMs(Number(size[1]) * 1000, Number(size[2])) }
      : undefined;
    return {
      name: `${name} (CPU ${cpuMs.toFixed(0)} ms, heap +${heapMB.toFixed(0)} MB)`,
      value,
      unit,
      ...(baseline ? { baseline } : {}),
      ...(target === undefined ? {} : { target, met }),
    };
  });
}

const sections = [
  ["master", (endpoints: string[]) => benchMaster(endpoints)],
  // etcd's process (when this run started it) for the CPU it spends in the window.
  ["first-schedule", (endpoints: string[]) => benchFirstSchedule(endpoints, etcd?.process?.pid)],
  ["failover", (endpoints: string[]) => benchFailover(endpoints)],
  ["planner", async () => plannerRows(await benchPlanner())],
  ["worker", (endpoints: string[]) => benchWorker(endpoints)],
  ["rolling", (endpoints: string[]) => benchRolling(endpoints)],
  ["console", (endpoints: string[]) => benchConsole(endpoints)],
  // A schedule after one worker joins 1,000 × 100,000 (JOIN_WORKERS / JOIN_TASKS size it).
  ["join", (endpoints: string[]) => benchJoin(endpoints)],
  // Its own etcd (default raft timings, CPU and /metrics of its own); FLEET_WORKERS / FLEET_TASKS size it.
  ["fleet", () => benchFleet()],
] as const;
const wanted = process.argv.slice(2);
const unknown = wanted.filter((name) => !sections.some(([section]) => section === name));
if (unknown.length > 0) {
  console.error(
    `bench: unknown section ${unknown.join(", ")} (known: ${sections.map(([s]) => s).join(", ")})`,
  );
  process.exit(2);
}

const etcd = process.env.ETCD_ENDPOINTS ? undefined : await startEtcd();
// An interrupted run (Ctrl-C, a timeout's SIGTERM) leaves no etcd behind.
const interrupted = () => void (etcd?.destroy() ?? Promise.resolve()).finally(() => process.exit(130));
process.once("SIGINT", interrupted).once("SIGTERM", interrupted);
const endpoints = process.env.ETCD_ENDPOINTS?.split(",") ?? [etcd!.hostPort];
const rows: BenchRow[] = [];
try {
  for (const [section, run] of sections) {
    if (wanted.length > 0 && !wanted.includes(section)) continue;
    console.error(`bench: ${section}…`);
    rows.push(...(await run(endpoints)));
  }
} finally {
  await etcd?.destroy();
}
// Memory figures close the table, after every timing.
const memory = (row: BenchRow) => (row.unit === "MB" ? 1 : 0);
printReport(
  "escheduler benchmark",
  [...rows].sort((a, b) => memory(a) - memory(b)),
);
