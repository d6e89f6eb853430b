/**
 * Rolling-update benchmark with real `bin/escheduler.js` processes and the DEFAULT master settings: a
 * fleet of 10 workers carrying 1,000 tasks is replaced worker by worker the way a Deployment with
 * `maxSurge: 1` does it — start one new worker, wait for `escheduler probe --worker NEW` (every second) to exit 0,
 * SIGTERM one old worker and wait for it to exit. The old workers run `--generation v1`, the new ones
 * `--generation v2` (a new build). The figures come from the handlers' own start/stop records: each
 * task's longest time running nowhere during the rollout (p50, p99, max), tasks that ran twice, moves
 * against the lower bound (every task must leave the old workers once) and tasks that moved twice, the
 * balance at the end, and the wall time; beside the same rollout with `--handoff immediate` and, for the
 * moves, with every worker of one generation (the planner cannot tell old from new: the way before
 * generations). Alone: `npm run bench -- rolling`.
 */
import { pathToFileURL } from "node:url";
import { DEFAULTS, type Task } from "../src/node/index.js";
import { doubleRuns, longestGaps, type RunInterval, runIntervals } from "../test/invariants/index.js";
import { build, Fleet, until } from "./fleet.js";
import { type BenchRow, printReport } from "./report.js";

const WORKERS = 10;
const TASKS = 1_000;
const GAP_P99_TARGET_MS = 500;
/** Moves may exceed the lower bound (one per task) by this factor. */
const MOVES_TARGET_FACTOR = 1.1;
/** Like a readiness probe's `periodSeconds: 1` (a probe is a node process: polling back to back would load the machine). */
const PROBE_PERIOD_MS = 1_000;

interface Rollout {
  /** Per move, from the old owner's stop to the new owner's start: moves off a SIGTERMed worker … */
  drainP99: number;
  /** … and moves to a joining worker. */
  joinP99: number;
  gapP50: number;
  gapP99: number;
  gapMax: number;
  /** Times a task ran on two workers at once. */
  doubleRuns: number;
  moves: number;
  mostMoves: number;
  /** Tasks that moved more than once. */
  movedTwice: number;
  /** Most minus fewest tasks on one worker at the end. */
  spread: number;
  wallMs: number;
}

export async function benchRolling(endpoints: string[]): Promise<BenchRow[]> {
  build();
  const wait = await rollout(endpoints, "wait", true);
  const immediate = await rollout(endpoints, "immediate", true);
  const oneGeneration = await rollout(endpoints, "wait", false);
  const beside = (value: number) => ({ name: "--handoff immediate", value });
  const besideOne = (value: number) => ({ name: "one generation (before)", value });
  const title = `rolling update, ${WORKERS} workers × ${TASKS} tasks, v1 → v2, default settings`;
  const movesTarget = Math.floor(MOVES_TARGET_FACTOR * TASKS);
  return [
    {
      name: `${title}: per-task gap p99 (p50 ${ms(wait.gapP50)}, max ${ms(wait.gapMax)}; per move p99: off a draining worker ${ms(wait.drainP99)}, to a joining one ${ms(wait.joinP99)}; immediate: p50 ${ms(immediate.gapP50)}, max ${ms(immediate.gapMax)})`,
      value: wait.gapP99,
      unit: "ms",
      baseline: beside(immediate.gapP99),
      target: `p99 ≤ ${GAP_P99_TARGET_MS} ms`,
      met: wait.gapP99 <= GAP_P99_TARGET_MS,
    },
    {
      name: `${title}: times a task ran on two workers at once (immediate: ${immediate.doubleRuns})`,
      value: wait.doubleRuns,
      unit: "",
      baseline: besideOne(oneGeneration.doubleRuns),
      target: "0",
      met: wait.doubleRuns === 0,
    },
    {
      name: `${title}: moves (lower bound ${TASKS}; most for one task ${wait.mostMoves}, one generation ${oneGeneration.mostMoves}; immediate ${immediate.moves})`,
      value: wait.moves,
      unit: "",
      baseline: besideOne(oneGeneration.moves),
      target: `≤ ${MOVES_TARGET_FACTOR} × lower bound (${movesTarget})`,
      met: wait.moves <= movesTarget,
    },
    {
      name: `${title}: tasks moved twice or more (immediate ${immediate.movedTwice})`,
      value: wait.movedTwice,
      unit: "",
      baseline: besideOne(oneGeneration.movedTwice),
      target: "0",
      met: wait.movedTwice === 0,
    },
    {
      name: `${title}: balance at the end, most − fewest tasks on a worker (immediate ${immediate.spread})`,
      value: wait.spread,
      unit: "",
      baseline: besideOne(oneGeneration.spread),
      target: "≤ 1",
      met: wait.spread <= 1,
    },
    {
      name: `${title}: wall time of the rollout (one generation ${ms(oneGeneration.wallMs)})`,
      value: wait.wallMs,
      unit: "ms",
      baseline: beside(immediate.wallMs),
    },
  ];
}

async function rollout(
  endpoints: string[],
  handoff: "wait" | "immediate",
  generations: boolean,
): Promise<Rollout> {
  const tasks: Task[] = Array.from({ length: TASKS }, (_, i) => ({ id: `task-${i}` }));
  const fleet = new Fleet(endpoints, tasks, { ttlMs: DEFAULTS.ttlMs });
  try {
    // The first start gathers (`--workers`), as a fleet's first start should: no task moves before the rollout.
    const gather = ["--workers", String(WORKERS)];
    fleet.master("m1", [...gather, ...(handoff === "immediate" ? ["--handoff", "immediate"] : [])]);
    const old = Array.from({ length: WORKERS }, (_, i) => `old-${i}`);
    const generation = (name: string) => ["--generation", generations ? name : "v1"];
    for (const name of old) fleet.worker(name, [...gather, "--max-workers", "0", ...generation("v1")]);
    await fleet.converged(120_000);

    const from = wallClock();
    const signalled = new Map<string, number>();
    for (const [i, leaving] of old.entries()) {
      const fresh = `new-${i}`;
      fleet.worker(fresh, generation("v2"));
      await until(`probe --worker ${fresh} to exit 0`, () => probeEvery(fleet, fresh), 120_000);
      signalled.set(leaving, fleet.signal(leaving, "SIGTERM"));
      await fleet.exited(leaving);
    }
    await fleet.converged(120_000);
    const to = wallClock();
    const loads = await Promise.all(old.map(async (_, i) => (await fleet.assignedTo(`new-${i}`)).length));

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
    const hops = handOffGaps(intervals, from, signalled);
    return {
      drainP99: percentile(
        hops.drain.sort((a, b) => a - b),
        0.99,
      ),
      joinP99: percentile(
        hops.join.sort((a, b) => a - b),
        0.99,
      ),
      gapP50: percentile(gaps, 0.5),
      gapP99: percentile(gaps, 0.99),
      gapMax: gaps.at(-1) ?? 0,
      doubleRuns: doubleRuns(intervals).length,
      moves: [...moves.values()].reduce((sum, n) => sum + n, 0),
      mostMoves: Math.max(0, ...moves.values()),
      movedTwice: [...moves.values()].filter((n) => n > 1).length,
      spread: Math.max(...loads) - Math.min(...loads),
      wallMs: to - from,
    };
  } finally {
    await fleet.close();
  }
}

/** One readiness probe, then (when not ready) the probe period before the next: how Kubernetes probes. */
async function probeEvery(fleet: Fleet, worker: string): Promise<boolean> {
  if ((await fleet.probe(worker)) === 0) return true;
  await new Promise((resolve) => setTimeout(resolve, PROBE_PERIOD_MS));
  return false;
}

/** Each move's gap (old owner's stop → new owner's start), split by whether the old owner was draining. */
function handOffGaps(
  intervals: readonly RunInterval[],
  since: number,
  signalled: ReadonlyMap<string, number>,
): { drain: number[]; join: number[] } {
  const gaps = { drain: [] as number[], join: [] as number[] };
  for (const runs of byTask(intervals).values()) {
    for (let i = 1; i < runs.length; i++) {
      const [before, after] = [runs[i - 1], runs[i]];
      if (after.from < since || after.pid === before.pid) continue;
      const draining = before.to >= (signalled.get(before.worker) ?? Number.POSITIVE_INFINITY);
      (draining ? gaps.drain : gaps.join).push(after.from - before.to);
    }
  }
  return gaps;
}

/** task → its runs, in time order. */
function byTask(intervals: readonly RunInterval[]): Map<string, RunInterval[]> {
  const runs = new Map<string, RunInterval[]>();
  for (const run of intervals) runs.set(run.task, [...(runs.get(run.task) ?? []), run]);
  for (const list of runs.values()) list.sort((a, b) => a.from - b.from);
  return runs;
}

/** task → how often it started on another process than the one before, from `since` on. */
function movesPerTask(intervals: readonly RunInterval[], since: number): Map<string, number> {
  const moves = new Map<string, number>();
  for (const [task, runs] of byTask(intervals)) {
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
