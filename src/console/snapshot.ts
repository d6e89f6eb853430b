/**
 * What the console shows, built at most once per etcd revision from the report `escheduler status` prints
 * (pause, refusal and cordons included), plus the recent schedule history for the chart.
 */
import {
  type NotRunningTask,
  type StatusReport,
  statusReport,
  type WorkerReport,
} from "../cli/status-view.js";
import type { ClusterState } from "../cluster-view/index.js";
import type { AuditEntry, HistoryEntry } from "../operator/index.js";
import { clusterReadiness } from "../readiness/index.js";

/** Most not-running tasks listed (the page says how many more there are). */
export const NOT_RUNNING_LIMIT = 500;
/** One schedule as the chart shows it: a history record without its moves and worker list. */
export type ScheduleMark = Omit<HistoryEntry, "moves" | "workers" | "movesTruncated"> & { workers: number };

/** A worker row: the status report's worker without its not-running list (counted instead). */
export type ConsoleWorker = Omit<WorkerReport, "notRunning"> & { notRunning: number };

export type ConsoleSnapshot = Omit<StatusReport, "workers"> & {
  builtAt: string;
  /** Admin actions are served (`--http-admin`); each still needs the bearer token. */
  admin: boolean;
  totals: { workers: number; tasks: number; notRunning: number; groups: string[] };
  /** Tasks per registered worker: the balance. */
  balance: { min: number; max: number; mean: number };
  workers: ConsoleWorker[];
  /** The first NOT_RUNNING_LIMIT tasks that are not running, with their worker. */
  notRunning: (NotRunningTask & { worker: string })[];
  /** Recent schedules, oldest first. */
  schedules: ScheduleMark[];
  /** The newest operator actions with who and why (the audit trail), oldest first. */
  actions: AuditEntry[];
};

/** The report `readStatus` reads at the state's revision, built from memory (O(cluster), no I/O). */
export function statusReportOf(root: string, state: ClusterState, now = Date.now()): StatusReport {
  const view = state.view();
  return statusReport(
    root,
    view,
    clusterReadiness(view),
    (worker, id) => state.groupOf(worker, id),
    { ...state.controls(), lastSchedule: state.records.newestSchedule() },
    now,
  );
}

/** The snapshot of one report and the recent history; any field the report gains passes through. */
export function consoleSnapshot(
  report: StatusReport,
  history: HistoryEntry[],
  admin: boolean,
  actions: AuditEntry[] = [],
  now = new Date(),
): ConsoleSnapshot {
  const workers = report.workers.map(({ notRunning, ...worker }): ConsoleWorker => ({
    ...worker,
    notRunning: notRunning.length,
  }));
  const registered = workers.filter((worker) => worker.registered);
  const loads = registered.map((worker) => worker.tasks);
  const tasks = workers.reduce((sum, worker) => sum + worker.tasks, 0);
  const notRunning: ConsoleSnapshot["notRunning"] = [];
  let notRunningCount = 0;
  for (const worker of report.workers) {
    notRunningCount += worker.notRunning.length;
    for (const task of worker.notRunning) {
      if (notRunning.length >= NOT_RUNNING_LIMIT) break;
      notRunning.push({ worker: worker.name, ...task });
    }
  }
  return {
    ...report,
    builtAt: now.toISOString(),
    admin,
    totals: {
      workers: registered.length,
      tasks,
      notRunning: notRunningCount,
      groups: [...new Set(workers.flatMap((worker) => Object.keys(worker.groups)))].sort(),
    },
    balance: {
      min: loads.length ? Math.min(...loads) : 0,
      max: loads.length ? Math.max(...loads) : 0,
      // Over the registered workers only: a gone (or held-for) worker's tasks are no one's load yet.
      mean: loads.length ? loads.reduce((sum, load) => sum + load, 0) / loads.length : 0,
    },
    workers,
    notRunning,
    schedules: history.map(({ moves, movesTruncated, workers, ...entry }): ScheduleMark => ({
      ...entry,
      workers: workers.length,
    })),
    actions,
  };
}
