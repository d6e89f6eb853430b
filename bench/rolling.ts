/**
 * Rolling-update benchmark with real `bin/escheduler.js` processes and the DEFAULT master settings: a
 * fleet of 10 workers carrying 1,000 tasks is replaced worker by worker the way a Deployment with
 * `maxSurge: 1` does it — start one new worker, wait for `escheduler probe --worker NEW` to exit 0,
 * SIGTERM one old worker and wait for it to exit. The figures come from the handlers' own start/stop
 * records: each task's longest time running nowhere during the rollout (p50, p99, max), tasks that ran
 * twice, moves against the lower bound (every task must leave the old workers once), and the wall time;
 * each beside the same rollout with `--handoff immediate`. Alone: `npm run bench -- rolling`.
 */
import { pathToFileURL } from "node:url";
import { DEFAULTS, type Task } from "../src/node/index.js";
import { doubleRuns, longestGaps, type RunInterval, runIntervals } from "../test/helpers/invariants.js";
import { build, Fleet, until } from "./fleet.js";
import { type BenchRow, printReport } from "./report.js";

const WORKERS = 10;
const TASKS = 1_000;
const GAP_P99_TARGET_MS = 500;
const MOST_MOVES_TARGET = 2;

interface Rollout {
  gapP50: number;
  gapP99: number;
  gapMax: number;
  /** Times a task ran on two workers at once. */
  doubleRuns: number;
  moves: number;
  mostMoves: number;
  wallMs: number;
}

export async function benchRolling(endpoints: string[]): Promise<BenchRow[]> {
  build();
  const wait = await rollout(endpoints, "wait");
  const immediate = await rollout(endpoints, "immediate");
  const beside = (value: number) => ({ name: "--handoff immediate", value });
  const title = `rolling update, ${WORKERS} workers × ${TASKS} tasks, default settings`;
  return [
    {
      name: `${title}: per-task gap p99 (p50 ${ms(wait.gapP50)}, max ${ms(wait.gapMax)}; immediate: p50 ${ms(immediate.gapP50)}, max ${ms(immediate.gapMax)})`,
      value: wait.gapP99,
      unit: "ms",
      baseline: beside(immediate.gapP99),
      target: `p99 ≤ ${GAP_P99_TARGET_MS} ms`,
      met: wait.gapP99 <= GAP_P99_TARGET_MS,
    },
    {
      name: `${title}: times a task ran on two workers at once`,
      value: wait.doubleRuns,
      unit: "",
      baseline: beside(immediate.doubleRuns),
      target: "0",
      met: wait.doubleRuns === 0,
    },
    {
      name: `${title}: moves (lower bound ${TASKS}; most for one task ${wait.mostMoves}, immediate ${immediate.mostMoves})`,
      value: wait.moves,
      unit: "",
      baseline: beside(immediate.moves),
      target: `no task moves more than ${MOST_MOVES_TARGET}×`,
      met: wait.mostMoves <= MOST_MOVES_TARGET,
    },
    {
      name: `${title}: wall time of the rollout`,
      value: wait.wallMs,
      unit: "ms",
      baseline: beside(immediate.wallMs),
    },
  ];
}

async function rollout(endpoints: string[], handoff: "wait" | "immediate"): Promise<Rollout> {
  const tasks: Task[] = Array.from({ length: TASKS }, (_, i) => ({ id: `task-${i}` }));
  const fleet = new Fleet(endpoints, tasks, { ttlMs: DEFAULTS.ttlMs });
  try {
    fleet.master("m1", handoff === "immediate" ? ["--handoff", "immediate"] : []);
    const old = Array.from({ length: WORKERS }, (_, i) => `old-${i}`);
    for (const name of old) fleet.worker(name);
    await fleet.converged(120_000);

    const from = wallClock();
    for (const [i, leaving] of old.entries()) {
      const fresh = `new-${i}`;
      fleet.worker(fresh);
      await until(`probe --worker ${fresh} to exit 0`, async () => (await fleet.probe(fresh)) === 0, 120_000);
      fleet.signal(leaving, "SIGTERM");
      await fleet.exited(leaving);
    }
    await fleet.converged(120_000);
    const to = wallClock();

    const { intervals } = runIntervals(fleet.events(), []);
    const gaps = [
      ...longestGaps(
        intervals,
        tasks.map((task) => task.id),
        { from, to },
      ).values(),
    ]
      .map((gap) => gap.ms)
      .sort((a, b) => a - b);
    const moves = movesPerTask(intervals, from);
    return {
      gapP50: percentile(gaps, 0.5),
      gapP99: percentile(gaps, 0.99),
      gapMax: gaps.at(-1) ?? 0,
      doubleRuns: doubleRuns(intervals).length,
      moves: [...moves.values()].reduce((sum, n) => sum + n, 0),
      mostMoves: Math.max(0, ...moves.values()),
      wallMs: to - from,
    };
  } finally {
    await fleet.close();
  }
}

/** task → how often it started on another process than the one before, from `since` on. */
function movesPerTask(intervals: readonly RunInterval[], since: number): Map<string, number> {
  const byTask = new Map<string, RunInterval[]>();
  for (const run of intervals) byTask.set(run.task, [...(byTask.get(run.task) ?? []), run]);
  const moves = new Map<string, number>();
  for (const [task, runs] of byTask) {
    runs.sort((a, b) => a.from - b.from);
    let count = 0;
    for (let i = 1; i < runs.length; i++) {
      if (runs[i].from >= since && runs[i].pid !== runs[i - 1].pid) count++;
    }
    moves.set(task, count);
  }
  return moves;
}

function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

function wallClock(): number {
  return performance.timeOrigin + performance.now();
}

function ms(value: number): string {
  return `${Math.round(value)} ms`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { startEtcd } = await import("../src/cli/etcd-process.js");
  const etcd = await startEtcd();
  try {
    printReport("escheduler rolling-update benchmark", await benchRolling([etcd.hostPort]));
  } finally {
    await etcd.destroy();
  }
}
