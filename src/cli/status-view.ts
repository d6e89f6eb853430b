/** The cluster as an operator reads it: a JSON report and a table, built from one ClusterView. */
import ms from "ms";
import type { ClusterView } from "../readiness/index.js";
import type { Controls } from "../master/controls.js";
import type {
  CordonRecord,
  HeldRecord,
  HistoryRecord,
  PausedRecord,
  PlanRecord,
  TaskState,
} from "../node/index.js";
import type { Readiness } from "./http.js";
import { byText, type PinReport, pinReports, renderControls } from "./status-operator.js";
import { rolloutLine } from "./rollout-view.js";

/**
 * A task that is not running: its status, `unstarted` when the worker wrote none yet, or `held` when
 * its worker crashed and the task waits for it until `until` (`--reassign-delay`).
 */
export interface NotRunningTask {
  id: string;
  state: TaskState | "unstarted" | "held";
  until?: string;
  /** False for a task the worker still reports but no longer has (typically `stopping`). */
  assigned: boolean;
  attempt?: number;
  since?: string;
  error?: string;
}

export interface WorkerReport {
  name: string;
  host?: string;
  pid?: number;
  version?: string;
  startedAt?: string;
  capacity?: number;
  /** Labels task selectors and spreads match. */
  labels?: Record<string, string>;
  /** Rollout generation (`--generation`). */
  generation?: string;
  /** False for a worker that holds assignments but is not registered (gone; the leader will move them). */
  registered: boolean;
  /** Included in the last applied plan. */
  inPlan: boolean;
  /** `cordon` (keeps its tasks, takes nothing new) or `drain` (handed off), from the operator or the worker's own draining mark. */
  cordon?: CordonRecord["mode"];
  cordonReason?: string;
  /** Who cordoned or drained it, and when (absent in records older than the audit trail). */
  cordonBy?: string;
  cordonAt?: string;
  /** A crashed worker's hold: its tasks wait for it until `until`. */
  held?: HeldRecord;
  tasks: number;
  /** Assigned tasks per balance group ("" is the default group). */
  groups: Record<string, number>;
  notRunning: NotRunningTask[];
}

export interface StatusReport {
  root: string;
  revision: number;
  leader: string | null;
  /** When the first gathering completed (the barrier marker), or null while the barrier is up. */
  barrierLeft: string | null;
  plan: (PlanRecord & { ageMs: number }) | null;
  ready: boolean;
  reasons: string[];
  /** Set while schedules are paused (`escheduler pause`). */
  paused: PausedRecord | null;
  /** The last schedule's refusal (e.g. the removal guard), or null when it was applied. */
  refused: { at: string; leader: string; reason: string } | null;
  workers: WorkerReport[];
  /** The operator's pins (`escheduler task pin`). */
  pins: PinReport[];
}

/** What the operator set and how the last schedule ended, read at the view's revision. */
export interface OperatorState extends Controls {
  lastSchedule?: HistoryRecord;
}

/** Builds the report; `groupOf` gives a task's group (undefined: the default group ""). */
export function statusReport(
  root: string,
  view: ClusterView,
  readiness: Readiness,
  groupOf: (worker: string, taskId: string) => string | undefined,
  operator: OperatorState = { cordons: { records: new Map(), draining: new Set() } },
  now = Date.now(),
): StatusReport {
  const names = new Set([...view.workers.keys(), ...view.assignments.keys()]);
  const workers = [...names].sort().map((name): WorkerReport => {
    const info = view.workers.get(name);
    const assigned = view.assignments.get(name) ?? [];
    const statuses = view.statuses.get(name) ?? new Map();
    const groups: Record<string, number> = {};
    for (const id of assigned) {
      const group = groupOf(name, id) ?? "";
      groups[group] = (groups[group] ?? 0) + 1;
    }
    const notRunning: NotRunningTask[] = [];
    const assignedSet = new Set(assigned);
    const held = operator.holds?.get(name);
    const waiting =
      !info && held && Date.parse(held.until) > now
        ? { state: "held" as const, until: held.until }
        : undefined;
    for (const id of assigned) {
      const status = statuses.get(id);
      if (!status) notRunning.push({ id, assigned: true, ...(waiting ?? { state: "unstarted" }) });
      else if (status.state !== "running") notRunning.push({ id, assigned: true, ...status });
    }
    for (const [id, status] of statuses) {
      if (!assignedSet.has(id)) notRunning.push({ id, assigned: false, ...status });
    }
    return {
      name,
      host: info?.host,
      pid: info?.pid,
      version: info?.version,
      startedAt: info?.startedAt,
      capacity: info?.capacity,
      ...(info?.labels ? { labels: info.labels } : {}),
      ...(info?.generation ? { generation: info.generation } : {}),
      registered: info !== undefined,
      inPlan: view.plan?.workers.includes(name) ?? false,
      ...cordonOf(operator, name),
      ...(waiting && held ? { held } : {}),
      tasks: assigned.length,
      groups,
      notRunning: notRunning.sort((a, b) => a.id.localeCompare(b.id)),
    };
  });
  return {
    root,
    revision: view.revision,
    leader: view.leader ?? null,
    barrierLeft: view.barrierLeft ?? null,
    plan: view.plan ? { ...view.plan, ageMs: Math.max(0, now - Date.parse(view.plan.at)) } : null,
    ready: readiness.ready,
    reasons: readiness.reasons,
    paused: operator.paused ?? null,
    refused:
      operator.lastSchedule?.outcome === "refused"
        ? {
            at: operator.lastSchedule.at,
            leader: operator.lastSchedule.leader,
            reason: operator.lastSchedule.refusal ?? "",
          }
        : null,
    workers,
    pins: pinReports(operator, view, view.plan),
  };
}

function cordonOf(operator: OperatorState, worker: string): Pick<WorkerReport, "cordon" | "cordonReason"> {
  const record = operator.cordons.records.get(worker);
  if (operator.cordons.draining.has(worker)) return { cordon: "drain", cordonReason: "draining itself" };
  if (!record) return {};
  return {
    cordon: record.mode,
    ...(record.reason ? { cordonReason: record.reason } : {}),
    ...(record.by ? { cordonBy: record.by } : {}),
    ...(record.at ? { cordonAt: record.at } : {}),
  };
}

/** The report as text for a terminal: a summary, a table of workers, then the tasks that are not running. */
export function renderStatus(report: StatusReport, now = Date.now()): string {
  const lines: string[] = [];
  const barrier = report.barrierLeft ? `passed ${ago(report.barrierLeft, now)}` : "not passed yet";
  lines.push(`root ${report.root} · leader ${report.leader ?? "none"} · barrier ${barrier}`);
  const plan = report.plan;
  lines.push(
    plan
      ? `last plan ${ms(plan.ageMs)} ago by ${plan.leader} (term ${plan.epoch}): ${count(plan.tasks, "task")} on ${count(plan.workers.length, "worker")}, moved ${plan.moved}`
      : "last plan: none yet",
  );
  lines.push(report.ready ? "cluster: READY" : `cluster: NOT READY (${report.reasons.join("; ")})`);
  lines.push(...(rolloutLine(report.workers) ?? []));
  if (report.paused) {
    const why = byText(report.paused);
    lines.push(`schedules: PAUSED ${ago(report.paused.at, now)}${why}; "escheduler resume" lets them run`);
  }
  if (report.refused) {
    lines.push(
      `last schedule: REFUSED ${ago(report.refused.at, now)} by ${report.refused.leader}: ${report.refused.reason}`,
    );
  }
  lines.push("");

  const groups = [...new Set(report.workers.flatMap((w) => Object.keys(w.groups)))].sort();
  const labelled = report.workers.some((w) => w.labels && Object.keys(w.labels).length > 0);
  const generations = report.workers.some((w) => w.generation !== undefined);
  const header = [
    "WORKER",
    "TASKS",
    ...groups.map((g) => (g === "" ? "(NO GROUP)" : g.toUpperCase())),
    "NOT RUNNING",
    "IN PLAN",
    ...(labelled ? ["LABELS"] : []),
    ...(generations ? ["GENERATION"] : []),
    "HOST",
    "PID",
    "UP",
  ];
  const rows = report.workers.map((w) => [
    w.registered
      ? `${w.name}${w.cordon ? ` (${w.cordon === "drain" ? "draining" : "cordoned"})` : ""}`
      : `${w.name} (${w.held ? `gone, held until ${w.held.until}` : "gone"})`,
    String(w.tasks),
    ...groups.map((g) => String(w.groups[g] ?? 0)),
    String(w.notRunning.length),
    w.inPlan ? "yes" : "no",
    ...(labelled ? [labelText(w.labels)] : []),
    ...(generations ? [w.generation ?? "-"] : []),
    w.host ?? "-",
    w.pid === undefined ? "-" : String(w.pid),
    w.startedAt ? ms(Math.max(0, now - Date.parse(w.startedAt))) : "-",
  ]);
  lines.push(...(rows.length > 0 ? table([header, ...rows]) : ["no workers registered"]));

  lines.push(...renderControls(report, now));
  lines.push(...renderUnassigned(plan));
  const notRunning = report.workers.flatMap((w) => w.notRunning.map((task) => ({ worker: w.name, ...task })));
  if (notRunning.length > 0) {
    lines.push("", "NOT RUNNING");
    lines.push(
      ...table([
        ["WORKER", "TASK", "STATE", "ATTEMPT", "SINCE", "ERROR"],
        ...notRunning.map((t) => [
          t.worker,
          t.assigned ? t.id : `${t.id} (unassigned)`,
          t.state === "held" ? `held for ${t.worker} until ${t.until}` : t.state,
          t.attempt === undefined ? "-" : String(t.attempt),
          t.since ? ago(t.since, now) : "-",
          t.error ?? "",
        ]),
      ]),
    );
  }
  return `${lines.join("\n")}\n`;
}

/** `zone=eu-1a,gpu=true`, or "-". */
export function labelText(labels: Record<string, string> | undefined): string {
  const entries = Object.entries(labels ?? {});
  return entries.length === 0 ? "-" : entries.map(([key, value]) => `${key}=${value}`).join(",");
}

/** The last plan's unassigned tasks: counts per reason kind, then each listed task and why. */
export function renderUnassigned(plan: PlanRecord | null): string[] {
  const counts = Object.entries(plan?.unassignedReasons ?? {});
  if (!plan || counts.length === 0) return [];
  const total = counts.reduce((sum, [, n]) => sum + n, 0);
  const listed = plan.unassignedTasks ?? [];
  const more = total > listed.length ? [`… and ${total - listed.length} more`] : [];
  return [
    "",
    `UNASSIGNED ${total} (${counts.map(([kind, n]) => `${kind} ${n}`).join(", ")})`,
    ...table([["TASK", "REASON", "WHY"], ...listed.map((t) => [t.id, t.kind, t.text])]),
    ...more,
  ];
}

/** Left-aligned columns separated by two spaces. */
export function table(rows: string[][]): string[] {
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => (row[column] ?? "").length)));
  return rows.map((row) =>
    row
      .map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column])))
      .join("  ")
      .trimEnd(),
  );
}

/** "1 worker", "3 workers". */
export function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

function ago(time: string, now: number): string {
  const at = Date.parse(time);
  return Number.isNaN(at) ? time : `${ms(Math.max(0, now - at))} ago`;
}
