/** What the console shows, built once per etcd revision from the same report `escheduler status` prints. */
import type { NotRunningTask, StatusReport, WorkerReport } from "../cli/status-view.js";
import type { PausedRecord } from "../node/index.js";
import { type Cordons, cordonMode, type HistoryEntry } from "../operator/index.js";

/** Most not-running tasks listed (the page says how many more there are). */
export const NOT_RUNNING_LIMIT = 500;
/** One schedule as the chart shows it: a history record without its moves and worker list. */
export type ScheduleMark = Omit<HistoryEntry, "moves" | "workers" | "movesTruncated"> & { workers: number };

/** A worker row: the status report's worker without its not-running list (counted instead). */
export type ConsoleWorker = Omit<WorkerReport, "notRunning"> & {
  notRunning: number;
  /** `cordon` (nothing new), `drain` (handing everything off), or absent. */
  cordon?: "cordon" | "drain";
};

/** What the operators set, read beside the report (src/operator). */
export interface OperatorState {
  cordons: Cordons;
  paused?: PausedRecord;
  /** Recent schedules, oldest first. */
  history: HistoryEntry[];
}

export type ConsoleSnapshot = Omit<StatusReport, "workers"> & {
  builtAt: string;
  /** Admin actions are served (`--http-admin`); each still needs the bearer token. */
  admin: boolean;
  totals: { workers: number; tasks: number; notRunning: number; groups: string[] };
  /** Tasks per registered worker: the balance. */
  balance: { min: number; max: number; mean: number };
  workers: ConsoleWorker[];
  paused: PausedRecord | null;
  /** Set while the last schedule was refused (the removal guard): why, and since when. */
  guard: { refusal: string; at: string } | null;
  /** The first NOT_RUNNING_LIMIT tasks that are not running, with their worker. */
  notRunning: (NotRunningTask & { worker: string })[];
  schedules: ScheduleMark[];
};

/** The snapshot of one report with the operators' state; any field the report gains passes through. */
export function consoleSnapshot(
  report: StatusReport,
  operator: OperatorState,
  admin: boolean,
  now = new Date(),
): ConsoleSnapshot {
  const workers = report.workers.map(({ notRunning, ...worker }): ConsoleWorker => ({
    ...worker,
    notRunning: notRunning.length,
    cordon: cordonMode(operator.cordons, worker.name),
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
  const last = operator.history.at(-1);
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
      mean: loads.length ? tasks / loads.length : 0,
    },
    workers,
    paused: operator.paused ?? null,
    guard: last?.outcome === "refused" ? { refusal: last.refusal ?? "refused", at: last.at } : null,
    notRunning,
    schedules: operator.history.map(({ moves, movesTruncated, workers, ...entry }): ScheduleMark => ({
      ...entry,
      workers: workers.length,
    })),
  };
}
