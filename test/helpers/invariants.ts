/**
 * The promises escheduler makes under failure, as checks over what really happened: the handlers'
 * own start/stop records (test/fixtures/recording-handler.mjs), what the harness did to each process
 * (kills, pauses), the etcd state, and a watch-recorded history of every write under the root.
 * Each check returns the violations it found, one sentence each (empty: the promise held).
 */
import { readFileSync } from "node:fs";
import type { Etcd3 } from "etcd3";
import { type ClusterView, readClusterView } from "../../src/readiness/index.js";
import type { KeyLayout, Task } from "../../src/node/index.js";
import { PrefixWatcher } from "../../src/watcher/index.js";

/** One line of the recording handler. */
export interface TaskEvent {
  /** Wall-clock ms (sub-ms precision). */
  t: number;
  worker: string;
  pid: number;
  task: string;
  event: "start" | "stop";
}

/** A SIGSTOP, with the SIGCONT that ended it (if any), in time and in etcd revisions. */
export interface Pause {
  from: number;
  to?: number;
  /** etcd revision once the pause took hold (nothing this process sends can land after it until `toRevision`). */
  fromRevision: number;
  /** etcd revision just before the SIGCONT. */
  toRevision?: number;
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

/** worker → task ids, sorted (the part of a cluster view the balance and stickiness checks need). */
export type Assignment = Map<string, string[]>;

/**
 * After convergence: every generated task is assigned to exactly one registered worker and reported
 * `running` there, nothing else is assigned or reported, the last plan covers exactly the registered
 * workers, the registered workers are exactly `liveWorkers`, and the handlers run exactly the
 * assignment (no stale task still running anywhere).
 */
export function convergenceProblems(
  view: ClusterView,
  expected: readonly Task[],
  liveWorkers: readonly string[],
  intervals: readonly RunInterval[],
): string[] {
  const problems: string[] = [];
  const registered = [...view.workers.keys()].sort();
  const live = [...liveWorkers].sort();
  if (!sameList(registered, live)) {
    problems.push(`registered workers are [${registered}], expected the live ones [${live}]`);
  }
  if (!view.leader) problems.push("no master leads");
  const planned = [...(view.plan?.workers ?? [])].sort();
  if (!sameList(planned, registered)) {
    problems.push(`the last plan covers [${planned}], not the registered workers [${registered}]`);
  }
  const owners = new Map<string, string[]>();
  for (const [worker, ids] of view.assignments) {
    for (const id of ids) owners.set(id, [...(owners.get(id) ?? []), worker]);
  }
  const expectedIds = new Set(expected.map((task) => task.id));
  for (const id of expectedIds) {
    const where = owners.get(id) ?? [];
    if (where.length !== 1) {
      problems.push(`task ${id} is assigned to ${where.length} workers [${where}]`);
      continue;
    }
    if (!view.workers.has(where[0]))
      problems.push(`task ${id} is assigned to ${where[0]}, which is not registered`);
    const state = view.statuses.get(where[0])?.get(id)?.state;
    if (state !== "running") problems.push(`task ${id} on ${where[0]} is ${state ?? "without a status"}`);
  }
  for (const id of owners.keys()) {
    if (!expectedIds.has(id)) problems.push(`task ${id} is assigned but not generated`);
  }
  for (const [worker, statuses] of view.statuses) {
    for (const id of statuses.keys()) {
      if (!view.assignments.get(worker)?.includes(id)) {
        problems.push(`${worker} reports task ${id}, which is not assigned to it`);
      }
    }
  }
  // What the handlers run now must be exactly the assignment, on the registered process.
  const running = new Set(
    intervals.filter((run) => run.to === Number.POSITIVE_INFINITY).map((run) => `${run.pid}/${run.task}`),
  );
  const wanted = new Set<string>();
  for (const [worker, ids] of view.assignments) {
    const pid = view.workers.get(worker)?.pid;
    for (const id of ids) wanted.add(`${pid}/${id}`);
  }
  for (const key of wanted)
    if (!running.has(key)) problems.push(`handler of pid/task ${key} is not running it`);
  for (const key of running) if (!wanted.has(key)) problems.push(`handler of pid/task ${key} still runs it`);
  return problems;
}

/** The cluster view (one revision) and its assignment. */
export async function readState(
  client: Etcd3,
  keys: KeyLayout,
): Promise<{ view: ClusterView; assignment: Assignment }> {
  const view = await readClusterView(client, keys);
  const assignment: Assignment = new Map();
  for (const worker of view.workers.keys())
    assignment.set(worker, [...(view.assignments.get(worker) ?? [])].sort());
  return { view, assignment };
}

const balanced = (task: Task) => task.key === undefined && (task.weight ?? 1) === 1;

/**
 * The planner's balance rule on an assignment: among unkeyed unit-weight tasks, each group's counts
 * differ by at most 1 between any two workers, and so do the totals.
 */
export function balanceProblems(assignment: Assignment, tasks: readonly Task[]): string[] {
  const groupOf = new Map(tasks.filter(balanced).map((task) => [task.id, task.group ?? ""]));
  const groups = new Set(groupOf.values());
  const problems: string[] = [];
  const spread = (label: string, count: (ids: string[]) => number) => {
    const counts = [...assignment].map(([worker, ids]) => `${worker}=${count(ids)}`);
    const values = [...assignment.values()].map(count);
    if (values.length > 0 && Math.max(...values) - Math.min(...values) > 1) {
      problems.push(`${label} is unbalanced: ${counts.join(" ")}`);
    }
  };
  for (const group of groups) {
    spread(`group "${group}"`, (ids) => ids.filter((id) => groupOf.get(id) === group).length);
  }
  spread("the total", (ids) => ids.filter((id) => groupOf.has(id)).length);
  return problems;
}

/**
 * The planner's stickiness on one transition: a worker present before and after never both lost and
 * gained tasks of one group (swapping them back would balance as well with fewer moves).
 */
export function stickinessProblems(before: Assignment, after: Assignment, tasks: readonly Task[]): string[] {
  const groupOf = new Map(tasks.filter(balanced).map((task) => [task.id, task.group ?? ""]));
  const problems: string[] = [];
  for (const [worker, afterIds] of after) {
    const beforeIds = before.get(worker);
    if (!beforeIds) continue;
    const had = new Set(beforeIds.filter((id) => groupOf.has(id)));
    const has = new Set(afterIds.filter((id) => groupOf.has(id)));
    for (const group of new Set(groupOf.values())) {
      const lost = [...had].filter((id) => !has.has(id) && groupOf.get(id) === group);
      const gained = [...has].filter((id) => !had.has(id) && groupOf.get(id) === group);
      if (lost.length > 0 && gained.length > 0) {
        problems.push(`${worker} lost [${lost}] and gained [${gained}] of group "${group}": needless moves`);
      }
    }
  }
  return problems;
}

/** One write under the root, as the history's watch delivered it. */
export interface HistoryEvent {
  type: "put" | "delete";
  key: string;
  value: string;
  /** The write's revision; for a synthetic event (after a resync), the view's revision (see `gaps`). */
  revision: number;
  /** For a put: the key's mod revision (an election key is written once, so this is its create revision). */
  modRevision?: number;
  synthetic: boolean;
  /** When the watch delivered it. */
  seenAt: number;
}

/**
 * Records every write under a prefix through the project's PrefixWatcher (revision-continuous).
 * Where etcd could not replay the history (compaction, restart), the watcher resyncs; the revisions
 * in between are known only as a gap, and checks treat writes inside a gap as unattributable.
 */
export class EtcdHistory {
  readonly events: HistoryEvent[] = [];
  /** Revision ranges (from, to] the watch could not replay. */
  readonly gaps: Array<{ from: number; to: number }> = [];

  private constructor(
    private readonly watcher: PrefixWatcher,
    private readonly prefix: string,
  ) {
    watcher.on("change", (change) => {
      this.events.push({
        type: change.type,
        key: change.key,
        value: change.type === "put" ? change.value : "",
        revision: change.revision,
        ...(change.type === "put" ? { modRevision: watcher.modRevision(change.key) ?? change.revision } : {}),
        synthetic: change.synthetic,
        seenAt: Date.now(),
      });
    });
    watcher.on("resync", (event) => this.gaps.push({ from: event.fromRevision, to: event.toRevision }));
  }

  static async record(client: Etcd3, prefix: string): Promise<EtcdHistory> {
    const watcher = new PrefixWatcher(client, prefix);
    const history = new EtcdHistory(watcher, prefix);
    await watcher.start();
    return history;
  }

  /**
   * Resolves once the watch has delivered every write made before the call: it writes a marker key of
   * its own (outside escheduler's layout) and waits for the view to reach its revision.
   */
  async caughtUp(client: Etcd3, timeoutMs = 10_000): Promise<void> {
    const written = await client.put(`${this.prefix}.history-mark`).value(String(Date.now())).exec();
    const revision = Number(written.header.revision);
    const deadline = Date.now() + timeoutMs;
    while (this.watcher.revision < revision) {
      if (Date.now() > deadline) throw new Error(`history watch did not reach revision ${revision}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  close(): Promise<void> {
    return this.watcher.close();
  }
}

/** The revision etcd is at now (read through `key`, which the client must be allowed to read). */
export async function currentRevision(client: Etcd3, key = "\u0000"): Promise<number> {
  const response = await client.get(key).exec();
  return Number(response.header.revision);
}

/** A master that could not send anything between two revisions (paused, or killed: no end). */
export interface SilentMaster {
  name: string;
  fromRevision: number;
  toRevision?: number;
}

/**
 * No leader-only key (`/R/task/…`, `/R/plan`, the barrier marker) was written by a deposed master.
 * A write at revision r is attributed to the leader at r (the oldest campaign key alive at r); it is a
 * violation when no master led at r, or when the leader at r could not have sent it (it was paused or
 * dead then) — the write then came from a master that had lost its leadership.
 */
export function deposedWriteProblems(
  history: readonly HistoryEvent[],
  keys: KeyLayout,
  silent: readonly SilentMaster[],
  gaps: ReadonlyArray<{ from: number; to: number }> = [],
): string[] {
  const inGap = (revision: number) => gaps.some((gap) => revision > gap.from && revision <= gap.to);
  const campaigns = new Map<string, { name: string; created: number; deleted?: number }>();
  for (const event of history) {
    if (!event.key.startsWith(keys.electionCandidatesPrefix)) continue;
    if (event.type === "put" && !campaigns.has(event.key)) {
      campaigns.set(event.key, { name: event.value, created: event.modRevision ?? event.revision });
    } else if (event.type === "delete") {
      const campaign = campaigns.get(event.key);
      if (campaign) campaign.deleted = event.revision;
    }
  }
  const leaderAt = (revision: number) => {
    let leader: { name: string; created: number } | undefined;
    for (const campaign of campaigns.values()) {
      const alive =
        campaign.created < revision && (campaign.deleted === undefined || campaign.deleted > revision);
      if (alive && (!leader || campaign.created < leader.created)) leader = campaign;
    }
    return leader;
  };
  const leaderOnly = (key: string) =>
    key.startsWith(keys.tasksPrefix) || key === keys.plan || key === keys.barrierLeft;
  const problems: string[] = [];
  for (const event of history) {
    if (!leaderOnly(event.key) || event.synthetic || inGap(event.revision)) continue;
    const leader = leaderAt(event.revision);
    if (!leader) {
      problems.push(`${event.type} of ${event.key} at revision ${event.revision}, when no master led`);
      continue;
    }
    const muted = silent.find(
      (entry) =>
        entry.name === leader.name &&
        event.revision > entry.fromRevision &&
        (entry.toRevision === undefined || event.revision <= entry.toRevision),
    );
    if (muted) {
      problems.push(
        `${event.type} of ${event.key} at revision ${event.revision}, while the leader ${leader.name} was paused or dead: a deposed master wrote it`,
      );
    }
  }
  return problems;
}

/** Masters' silent windows from their fates (pauses, and the time after a kill). */
export function silentMasters(fates: readonly ProcessFate[]): SilentMaster[] {
  return fates
    .filter((fate) => fate.role === "master")
    .flatMap((fate) => [
      ...fate.pauses.map((pause) => ({
        name: fate.name,
        fromRevision: pause.fromRevision,
        toRevision: pause.toRevision,
      })),
      ...(fate.endedRevision === undefined ? [] : [{ name: fate.name, fromRevision: fate.endedRevision }]),
    ]);
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) groups.set(key(item), [...(groups.get(key(item)) ?? []), item]);
  return groups;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((value, i) => value === b[i]);
}

function ms(value: number): string {
  return value === Number.POSITIVE_INFINITY ? "forever" : `${Math.round(value)}ms`;
}

function span(interval: RunInterval, base: number): string {
  const end = interval.to === Number.POSITIVE_INFINITY ? "…" : `${Math.round(interval.to - base)}`;
  return `[${Math.round(interval.from - base)}, ${end}]ms`;
}
