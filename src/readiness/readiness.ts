import type { TaskStatus } from "../node/index.js";
import type { ClusterView } from "./cluster-view.js";

export interface Readiness {
  ready: boolean;
  reasons: string[];
}

/** Reasons beyond this many are summarised as "and N more", so a probe's answer stays readable. */
const MAX_REASONS = 10;

/** A worker is ready when it is registered, past the barrier, in the last applied plan, and runs every task assigned to it. */
export function workerReadiness(name: string, view: ClusterView): Readiness {
  const reasons: string[] = [];
  if (!view.workers.has(name)) reasons.push(`worker ${quote(name)} is not registered`);
  if (view.barrierLeft === undefined) reasons.push(BARRIER_NOT_LEFT);
  return verdict([...reasons, ...shareReasons(name, view)]);
}

/**
 * Whether a worker carries its share: in the last applied plan, and every task assigned to it
 * running. Part of `workerReadiness`; alone, it is what a worker waits for before leaving the
 * first-start barrier.
 */
export function shareReadiness(name: string, view: ClusterView): Readiness {
  return verdict(shareReasons(name, view));
}

function shareReasons(name: string, view: ClusterView): string[] {
  const reasons: string[] = [];
  if (!view.plan) reasons.push(NO_PLAN);
  else if (!view.plan.workers.includes(name)) {
    reasons.push(`worker ${quote(name)} is not in the last plan (epoch ${view.plan.epoch})`);
  }
  reasons.push(...tasksNotRunning(name, view));
  return reasons;
}

/** The cluster is ready when a leader exists, the barrier was left, the last plan covers every registered worker, every generated task is assigned, and every assigned task runs. */
export function clusterReadiness(view: ClusterView): Readiness {
  const reasons: string[] = [];
  if (view.leader === undefined) reasons.push("no master is leading");
  if (view.barrierLeft === undefined) reasons.push(BARRIER_NOT_LEFT);
  if (!view.plan) reasons.push(NO_PLAN);
  else {
    const planned = new Set(view.plan.workers);
    for (const worker of sorted(view.workers.keys())) {
      if (!planned.has(worker)) {
        reasons.push(`worker ${quote(worker)} is not in the last plan (epoch ${view.plan.epoch})`);
      }
    }
  }
  if (view.plan) {
    let assigned = 0;
    for (const ids of view.assignments.values()) assigned += ids.length;
    // No worker, or no capacity left: generated tasks that nobody carries.
    const missing = view.plan.tasks - assigned;
    if (missing > 0)
      reasons.push(`${missing} of ${view.plan.tasks} generated tasks are not assigned to any worker`);
  }
  for (const worker of sorted(view.assignments.keys())) reasons.push(...tasksNotRunning(worker, view));
  return verdict(reasons);
}

const BARRIER_NOT_LEFT = "the first-start barrier has not completed (worker_barrier_left is not set)";
const NO_PLAN = "no plan has been applied yet";

function tasksNotRunning(worker: string, view: ClusterView): string[] {
  const statuses = view.statuses.get(worker);
  const reasons: string[] = [];
  for (const taskId of sorted(view.assignments.get(worker) ?? [])) {
    const status = statuses?.get(taskId);
    if (status?.state !== "running")
      reasons.push(`task ${quote(taskId)} on ${quote(worker)} ${describe(status)}`);
  }
  return reasons;
}

function describe(status: TaskStatus | undefined): string {
  if (!status) return "has no status yet";
  if (status.state === "failed") return `is failed${status.error ? `: ${status.error}` : ""}`;
  return `is ${status.state}`;
}

function verdict(reasons: string[]): Readiness {
  if (reasons.length <= MAX_REASONS) return { ready: reasons.length === 0, reasons };
  return {
    ready: false,
    reasons: [...reasons.slice(0, MAX_REASONS), `and ${reasons.length - MAX_REASONS} more`],
  };
}

function sorted(values: Iterable<string>): string[] {
  return [...values].sort();
}

function quote(value: string): string {
  return JSON.stringify(value);
}
