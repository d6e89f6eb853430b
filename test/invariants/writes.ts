/**
 * Who wrote the leader's keys, judged from etcd's history: no write by a deposed leader, and no
 * schedule write while paused except the completion of hand-offs begun before the pause.
 */
import type { KeyLayout } from "../../src/node/index.js";
import type { HistoryEvent } from "./history.js";
import type { ProcessFate } from "./runs.js";

/** Revision ranges (from, to] a history could not replay. */
export type HistoryGaps = ReadonlyArray<{ from: number; to: number }>;

/** A master that could not send anything between two revisions (paused, or killed: no end). */
export interface SilentMaster {
  name: string;
  fromRevision: number;
  toRevision?: number;
  /** When it fell silent (wall clock), to say how long after it a write was seen. */
  from?: number;
  /**
   * Writes seen until then may have been sent before the silence: an isolated etcd member can hold a
   * request and have it committed once its links are back, after the heal.
   */
  inFlightUntil?: number;
}

interface Campaign {
  name: string;
  created: number;
  deleted?: number;
}

/** The campaign keys' lifetimes in a history; the leader at revision r is the oldest campaign alive at r. */
class Campaigns {
  private readonly campaigns = new Map<string, Campaign>();

  constructor(history: readonly HistoryEvent[], keys: KeyLayout) {
    for (const event of history) {
      if (!event.key.startsWith(keys.electionCandidatesPrefix)) continue;
      if (event.type === "put" && !this.campaigns.has(event.key)) {
        this.campaigns.set(event.key, { name: event.value, created: event.modRevision ?? event.revision });
      } else if (event.type === "delete") {
        const campaign = this.campaigns.get(event.key);
        if (campaign) campaign.deleted = event.revision;
      }
    }
  }

  leaderAt(revision: number): Campaign | undefined {
    let leader: Campaign | undefined;
    for (const campaign of this.campaigns.values()) {
      const alive =
        campaign.created < revision && (campaign.deleted === undefined || campaign.deleted > revision);
      if (alive && (!leader || campaign.created < leader.created)) leader = campaign;
    }
    return leader;
  }
}

const inGap = (gaps: HistoryGaps, revision: number) =>
  gaps.some((gap) => revision > gap.from && revision <= gap.to);

/** The `leader` a plan or history record names, if it parses. */
function recordLeader(value: string): string | undefined {
  try {
    const leader = (JSON.parse(value) as { leader?: unknown }).leader;
    return typeof leader === "string" ? leader : undefined;
  } catch {
    return undefined;
  }
}

/**
 * No leader-only key (`/R/task/…`, `/R/plan`, `/R/history/…`, the barrier marker) was written by a
 * deposed master. A write at revision r is attributed to the leader at r (the oldest campaign key
 * alive at r); it is a violation when no master led at r, when the leader at r could not have sent it
 * (it was paused or dead then), or when it is a plan or history record naming another master — the
 * write then came from a master that had lost its leadership.
 */
export function deposedWriteProblems(
  history: readonly HistoryEvent[],
  keys: KeyLayout,
  silent: readonly SilentMaster[],
  gaps: HistoryGaps = [],
): string[] {
  const campaigns = new Campaigns(history, keys);
  const leaderOnly = (key: string) =>
    key.startsWith(keys.tasksPrefix) ||
    key.startsWith(keys.historyPrefix) ||
    key === keys.plan ||
    key === keys.barrierLeft;
  const problems: string[] = [];
  for (const event of history) {
    if (!leaderOnly(event.key) || event.synthetic || inGap(gaps, event.revision)) continue;
    const write = `${event.type} of ${event.key} at revision ${event.revision}`;
    const leader = campaigns.leaderAt(event.revision);
    if (!leader) {
      problems.push(`${write}, when no master led`);
      continue;
    }
    const muted = silent.find(
      (entry) =>
        entry.name === leader.name &&
        // A campaign begun after the silence came from another run of that name (a restart).
        leader.created <= entry.fromRevision &&
        event.revision > entry.fromRevision &&
        (entry.toRevision === undefined || event.revision <= entry.toRevision) &&
        !(entry.inFlightUntil !== undefined && event.seenAt <= entry.inFlightUntil),
    );
    if (muted) {
      // How long after the silence began the history's watch saw it: an answer from etcd that long
      // after the last send (latency, an election of etcd's own) would mean a write in flight.
      const seen =
        muted.from === undefined
          ? ""
          : ` (seen ${Math.round(event.seenAt - muted.from)} ms after it fell silent)`;
      problems.push(
        `${write}, while the leader ${leader.name} was paused or dead${seen}: a deposed master wrote it`,
      );
      continue;
    }
    const named =
      event.type === "put" && event.key !== keys.barrierLeft ? recordLeader(event.value) : undefined;
    if (!event.key.startsWith(keys.tasksPrefix) && named !== undefined && named !== leader.name) {
      problems.push(
        `${write} names the leader ${named}, but ${leader.name} led then: a deposed master wrote it`,
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
        from: pause.from,
        inFlightUntil: pause.inFlightUntil,
      })),
      ...(fate.endedRevision === undefined
        ? []
        : [
            {
              name: fate.name,
              fromRevision: fate.endedRevision,
              from: fate.endedAt,
              inFlightUntil: fate.inFlightUntil,
            },
          ]),
    ]);
}

/** The revisions (from, to] during which schedules were paused: `/R/paused` written, until deleted. */
export function pauseWindows(
  history: readonly HistoryEvent[],
  keys: KeyLayout,
): Array<{ from: number; to?: number }> {
  const windows: Array<{ from: number; to?: number }> = [];
  for (const event of history) {
    if (event.key !== keys.paused) continue;
    const open = windows.at(-1);
    if (event.type === "put" && (!open || open.to !== undefined)) windows.push({ from: event.revision });
    if (event.type === "delete" && open && open.to === undefined) open.to = event.revision;
  }
  return windows;
}

/**
 * Once `pause` has written `/R/paused`, no leader transaction adds, removes or moves a task nor writes
 * `/R/plan` until `resume` deletes it — except the completion of a hand-off already begun: a task that
 * had been removed from its old owner and was assigned nowhere when the pause began may be written to
 * its new owner once.
 */
export function pausedWriteProblems(
  history: readonly HistoryEvent[],
  keys: KeyLayout,
  gaps: HistoryGaps = [],
): string[] {
  const owners = new Map<string, Set<string>>();
  const problems: string[] = [];
  let pausedSince: number | undefined;
  /** Tasks removed from an owner and assigned nowhere when the pause began. */
  let inFlight = new Set<string>();
  for (const event of history) {
    if (event.key === keys.paused) {
      if (event.type === "put" && pausedSince === undefined) {
        pausedSince = event.revision;
        inFlight = new Set([...owners].filter(([, where]) => where.size === 0).map(([id]) => id));
      } else if (event.type === "delete") pausedSince = undefined;
      continue;
    }
    const task = keys.parseTask(event.key);
    if (!task && event.key !== keys.plan) continue;
    if (task) {
      const where = owners.get(task.taskId) ?? new Set<string>();
      owners.set(task.taskId, where);
      if (event.type === "put") where.add(task.worker);
      else where.delete(task.worker);
    }
    if (pausedSince === undefined || event.synthetic || inGap(gaps, event.revision)) continue;
    if (task && event.type === "put" && inFlight.delete(task.taskId)) continue;
    problems.push(
      `${event.type} of ${event.key} at revision ${event.revision}, while schedules were paused (since revision ${pausedSince}): a paused leader wrote it`,
    );
  }
  return problems;
}
