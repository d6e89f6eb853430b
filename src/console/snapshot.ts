/** What the console shows, built once per etcd revision from the same report `escheduler status` prints. */
import type { NotRunningTask, StatusReport, WorkerReport } from "../cli/status-view.js";

/** Most not-running tasks listed (the page says how many more there are). */
export const NOT_RUNNING_LIMIT = 500;
/** Most schedules kept for the moves-over-time chart. */
export const SCHEDULES_LIMIT = 200;

/** One schedule as the chart shows it: when, by whom, how many tasks moved. */
export interface ScheduleMark {
  at: string;
  leader: string;
  epoch: number;
  tasks: number;
  workers: number;
  moved: number;
}

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
  schedules: ScheduleMark[];
};

/** The snapshot of one report; any field the report gains (pause, guard, cordons) passes through. */
export function consoleSnapshot(
  report: StatusReport,
  schedules: ScheduleMark[],
  admin: boolean,
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
      mean: loads.length ? tasks / loads.length : 0,
    },
    workers,
    notRunning,
    schedules: schedules.slice(-SCHEDULES_LIMIT),
  };
}

/** Appends the report's plan to `marks` when it is a schedule not seen yet (keeps SCHEDULES_LIMIT). */
export function rememberSchedule(marks: ScheduleMark[], report: StatusReport): void {
  const plan = report.plan;
  if (!plan) return;
  const last = marks.at(-1);
  if (last && last.at === plan.at && last.epoch === plan.epoch) return;
  marks.push({
    at: plan.at,
    leader: plan.leader,
    epoch: plan.epoch,
    tasks: plan.tasks,
    workers: plan.workers.length,
    moved: plan.moved,
  });
  marks.splice(0, Math.max(0, marks.length - SCHEDULES_LIMIT));
}
