/**
 * The soak's faults, chosen from the seed alone: each round is a timeline of faults at times relative
 * to the round's start, each with the action that undoes it (restart, SIGCONT, heal, resume,
 * uncordon) at a later relative time. The planner keeps its own model of what is faulted, so the
 * choices never depend on how fast the processes were: one seed, one sequence.
 */
import type { SeededRandom } from "./random.js";

export type FaultKind =
  "kill" | "term" | "stop" | "latency" | "isolate" | "pause" | "cordon" | "drain" | "generator" | "schedule";

export type Action =
  | { kind: "kill" | "term" | "stop"; node: string }
  | { kind: "restart" | "cont" | "unlatency"; node: string }
  | { kind: "latency"; node: string; ms: number }
  | { kind: "isolate"; member: number }
  | { kind: "heal" }
  | { kind: "pause" | "resume" }
  | { kind: "cordon" | "drain" | "uncordon"; worker: string }
  | { kind: "generator"; tasks: string[] }
  | { kind: "schedule"; allowRemoval: boolean };

export interface TimedAction {
  /** ms after the round's start. */
  at: number;
  action: Action;
  /** True for an injected fault, false for the action that undoes one. */
  fault: boolean;
}

export interface PlannerSettings {
  masters: string[];
  workers: string[];
  /** Members that may be isolated (the soak's own client stays on another). */
  isolatable: number[];
  /** Every task id the generator may return; it starts with the first `initialTasks`. */
  taskPool: string[];
  initialTasks: number;
  /** How long faults keep starting in a round. */
  roundMs: [number, number];
}

/** How long each kind of fault lasts before it is undone (ms, inclusive range). */
export const FAULT_MS = {
  /** A node killed or terminated until restarted, or stopped until SIGCONT. */
  node: [300, 4_500],
  latency: [1_500, 5_000],
  isolate: [1_000, 6_000],
  pause: [500, 5_000],
  cordon: [1_000, 6_000],
} satisfies Record<string, [number, number]>;

const WEIGHTS: Record<FaultKind, number> = {
  kill: 3,
  term: 2,
  stop: 3,
  latency: 2,
  isolate: 1,
  pause: 1.5,
  cordon: 1,
  drain: 1.5,
  generator: 2,
  schedule: 2,
};

export class FaultPlanner {
  /** What the generator returns at the end of the rounds planned so far. */
  tasks: string[];

  constructor(
    private readonly random: SeededRandom,
    private readonly settings: PlannerSettings,
  ) {
    this.tasks = settings.taskPool.slice(0, settings.initialTasks);
  }

  /** The next round's timeline, sorted by time; every fault is undone within it. */
  round(): TimedAction[] {
    const { random, settings } = this;
    const timeline: TimedAction[] = [];
    /** Per node, member, "pause" or cordoned worker: busy until (ms). */
    const busy = new Map<string, number>();
    const free = (id: string, at: number) => (busy.get(id) ?? 0) <= at;
    const faultedNodes = (names: string[], at: number) => names.filter((name) => !free(name, at)).length;
    const length = random.int(...settings.roundMs);
    const add = (at: number, action: Action, fault: boolean) => timeline.push({ at, action, fault });
    for (let at = random.int(200, 1_000); at < length; at += random.int(200, 1_500)) {
      const kind = random.weighted(WEIGHTS);
      switch (kind) {
        case "kill":
        case "term":
        case "stop":
        case "latency": {
          // At most one master and two workers faulted at once: a quorum of the fleet keeps working.
          const candidates = [
            ...(faultedNodes(settings.masters, at) === 0 ? settings.masters : []),
            ...(faultedNodes(settings.workers, at) < 2 ? settings.workers.filter((w) => free(w, at)) : []),
          ];
          if (candidates.length === 0) break;
          const node = random.pick(candidates);
          const lasts = random.int(...FAULT_MS[kind === "latency" ? "latency" : "node"]);
          if (kind === "latency") {
            add(at, { kind, node, ms: random.int(200, 1_200) }, true);
            add(at + lasts, { kind: "unlatency", node }, false);
          } else {
            add(at, { kind, node }, true);
            add(at + lasts, { kind: kind === "stop" ? "cont" : "restart", node }, false);
          }
          busy.set(node, at + lasts);
          break;
        }
        case "isolate": {
          if (!settings.isolatable.every((member) => free(`member${member}`, at))) break;
          const member = random.pick(settings.isolatable);
          const lasts = random.int(...FAULT_MS.isolate);
          add(at, { kind, member }, true);
          add(at + lasts, { kind: "heal" }, false);
          for (const m of settings.isolatable) busy.set(`member${m}`, at + lasts);
          break;
        }
        case "pause": {
          if (!free("pause", at)) break;
          const lasts = random.int(...FAULT_MS.pause);
          add(at, { kind: "pause" }, true);
          add(at + lasts, { kind: "resume" }, false);
          busy.set("pause", at + lasts);
          break;
        }
        case "cordon":
        case "drain": {
          const cordoned = settings.workers.filter((w) => !free(`cordon:${w}`, at));
          if (cordoned.length >= 2) break;
          const worker = random.pick(settings.workers.filter((w) => !cordoned.includes(w)));
          const lasts = random.int(...FAULT_MS.cordon);
          add(at, { kind, worker }, true);
          add(at + lasts, { kind: "uncordon", worker }, false);
          busy.set(`cordon:${worker}`, at + lasts);
          break;
        }
        case "generator":
          this.tasks = this.nextTasks();
          add(at, { kind, tasks: this.tasks }, true);
          break;
        case "schedule":
          add(at, { kind, allowRemoval: random.chance(0.5) }, true);
          break;
      }
    }
    // Stable: a fault and its undo never swap, nor do two actions planned for one moment.
    return timeline
      .map((entry, i) => ({ entry, i }))
      .sort((a, b) => a.entry.at - b.entry.at || a.i - b.i)
      .map(({ entry }) => entry);
  }

  /** Nothing (`[]`), back from nothing, a new size, or a few tasks swapped. */
  private nextTasks(): string[] {
    const { random, settings } = this;
    const pool = settings.taskPool;
    if (this.tasks.length > 0 && random.chance(0.2)) return [];
    if (this.tasks.length === 0 || random.chance(0.4)) {
      return random.sample(pool, random.int(Math.ceil(pool.length / 4), pool.length));
    }
    const kept = random.sample(this.tasks, Math.max(1, this.tasks.length - random.int(1, 3)));
    const added = random.sample(
      pool.filter((id) => !this.tasks.includes(id)),
      random.int(0, 3),
    );
    return pool.filter((id) => kept.includes(id) || added.includes(id));
  }
}

/** The count of each fault kind in `timeline`. */
export function faultCounts(timeline: readonly TimedAction[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const { action, fault } of timeline) {
    if (fault) counts.set(action.kind, (counts.get(action.kind) ?? 0) + 1);
  }
  return counts;
}
