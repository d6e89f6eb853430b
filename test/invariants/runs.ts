/**
 * When each task really ran where, from the handlers' own start/stop records
 * (test/fixtures/recording-handler.mjs) and what the harness did to each process (kills, pauses):
 * a task never runs in two places at once.
 */
import { readFileSync } from "node:fs";

/** One line of the recording handler. */
export interface TaskEvent {
  /** Wall-clock ms (sub-ms precision). */
  t: number;
  worker: string;
  pid: number;
  task: string;
  /** `start-failed`: a start that threw (it never ran). */
  event: "start" | "stop" | "start-failed";
}

/** A SIGSTOP, with the SIGCONT that ended it (if any), in time and in etcd revisions. */
export interface Pause {
  from: number;
  to?: number;
  /** etcd revision once the pause took hold (nothing this process sends can land after it until `toRevision`). */
  fromRevision: number;
  /** etcd revision just before the SIGCONT. */
  toRevision?: number;
  /** Overlapped an etcd member's isolation: writes it sent before may be seen until this wall time (past the heal). */
  inFlightUntil?: number;
}

/** What the harness did to one process. */
export interface ProcessFate {
  pid: number;
  name: string;
  role: "master" | "worker";
  /** When it was SIGKILLed (or otherwise ended without stopping its tasks): nothing runs there afterwards. */
  endedAt?: number;
  /** etcd revision once the kill took hold. */
  endedRevision?: number;
  /** Ended during (or just before) an etcd member's isolation: writes it sent may be seen until this wall time. */
  inFlightUntil?: number;
  pauses: Pause[];
}

/** A task running on one process from `from` to `to` (Infinity: still running). */
export interface RunInterval {
  task: string;
  worker: string;
  pid: number;
  from: number;
  to: number;
}

/** Reads the recording handler's file (missing file: no events). */
export function readTaskEvents(file: string): TaskEvent[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return [];
  }
  return text
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as TaskEvent);
}

/**
 * When each task really ran where. A killed process runs nothing after its kill; a paused one runs
 * nothing while paused, nor for `wakeGraceMs` after its SIGCONT (the time it needs to notice the lost
 * lease and stop its stale tasks — longer, and the overlap shows up as a double run).
 */
export function runIntervals(
  events: readonly TaskEvent[],
  fates: readonly ProcessFate[],
  options: { wakeGraceMs?: number } = {},
): { intervals: RunInterval[]; problems: string[] } {
  const wakeGraceMs = options.wakeGraceMs ?? 0;
  const fateOf = new Map(fates.map((fate) => [fate.pid, fate]));
  const open = new Map<string, TaskEvent>();
  const raw: RunInterval[] = [];
  const problems: string[] = [];
  const sorted = [...events].sort((a, b) => a.t - b.t);
  for (const event of sorted) {
    if (event.event === "start-failed") continue;
    const id = `${event.pid}\u0000${event.task}`;
    const started = open.get(id);
    if (event.event === "start") {
      if (started) {
        problems.push(
          `task ${event.task} started twice on ${event.worker} (pid ${event.pid}) without a stop in between`,
        );
        continue;
      }
      open.set(id, event);
    } else {
      if (!started) {
        problems.push(`task ${event.task} stopped on ${event.worker} (pid ${event.pid}) without a start`);
        continue;
      }
      open.delete(id);
      raw.push({ task: event.task, worker: event.worker, pid: event.pid, from: started.t, to: event.t });
    }
  }
  for (const started of open.values()) {
    const endedAt = fateOf.get(started.pid)?.endedAt;
    raw.push({
      task: started.task,
      worker: started.worker,
      pid: started.pid,
      from: started.t,
      to: endedAt ?? Number.POSITIVE_INFINITY,
    });
  }
  const intervals = raw.flatMap((interval) => {
    const pauses = fateOf.get(interval.pid)?.pauses ?? [];
    return pauses.reduce<RunInterval[]>(
      (pieces, pause) =>
        pieces.flatMap((piece) =>
          subtract(
            piece,
            pause.from,
            pause.to === undefined ? Number.POSITIVE_INFINITY : pause.to + wakeGraceMs,
          ),
        ),
      [interval],
    );
  });
  return { intervals, problems };
}

function subtract(interval: RunInterval, from: number, to: number): RunInterval[] {
  if (to <= interval.from || from >= interval.to) return [interval];
  const pieces: RunInterval[] = [];
  if (interval.from < from) pieces.push({ ...interval, to: from });
  if (to < interval.to) pieces.push({ ...interval, from: to });
  return pieces;
}

/** Every time one task ran in two places at once. */
export function doubleRuns(intervals: readonly RunInterval[], base = 0): string[] {
  const byTask = groupBy(intervals, (interval) => interval.task);
  const problems: string[] = [];
  for (const [task, runs] of byTask) {
    const sorted = [...runs].sort((a, b) => a.from - b.from);
    for (let i = 0; i < sorted.length; i++) {
      for (let j = i + 1; j < sorted.length && sorted[j].from < sorted[i].to; j++) {
        const [a, b] = [sorted[i], sorted[j]];
        const overlap = Math.min(a.to, b.to) - b.from;
        problems.push(
          `task ${task} ran on ${a.worker} (pid ${a.pid}) ${span(a, base)} and on ${b.worker} (pid ${b.pid}) ${span(b, base)}: ${ms(overlap)} at once`,
        );
      }
    }
  }
  return problems;
}

/** The longest time, within [from, to], that each task ran nowhere. */
export function longestGaps(
  intervals: readonly RunInterval[],
  taskIds: readonly string[],
  window: { from: number; to: number },
): Map<string, { ms: number; at: number }> {
  const byTask = groupBy(intervals, (interval) => interval.task);
  const gaps = new Map<string, { ms: number; at: number }>();
  for (const task of taskIds) {
    const runs = [...(byTask.get(task) ?? [])].sort((a, b) => a.from - b.from);
    let coveredUntil = window.from;
    let longest = { ms: 0, at: window.from };
    for (const run of runs) {
      if (run.to <= coveredUntil) continue;
      if (run.from > coveredUntil && run.from > window.from) {
        const gap = Math.min(run.from, window.to) - coveredUntil;
        if (gap > longest.ms) longest = { ms: gap, at: coveredUntil };
      }
      coveredUntil = Math.max(coveredUntil, run.to);
      if (coveredUntil >= window.to) break;
    }
    if (coveredUntil < window.to && window.to - coveredUntil > longest.ms) {
      longest = { ms: window.to - coveredUntil, at: coveredUntil };
    }
    gaps.set(task, longest);
  }
  return gaps;
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) groups.set(key(item), [...(groups.get(key(item)) ?? []), item]);
  return groups;
}

function ms(value: number): string {
  return value === Number.POSITIVE_INFINITY ? "forever" : `${Math.round(value)}ms`;
}

function span(interval: RunInterval, base: number): string {
  const end = interval.to === Number.POSITIVE_INFINITY ? "…" : `${Math.round(interval.to - base)}`;
  return `[${Math.round(interval.from - base)}, ${end}]ms`;
}
