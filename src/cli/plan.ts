/** `escheduler plan --generator <module> [--json]`: what a schedule would do now, computed as the leader would, writing nothing. */
import type { Plan, ReasonKind, UnassignedReason } from "../balancer/index.js";
import { unassignedSummary } from "../master/unassigned.js";
import { labelText } from "./status-view.js";
import { pino } from "pino";
import { z } from "zod";
import { cordonMode } from "../master/controls.js";
import { removalCheck } from "../master/guard.js";
import { taskChanges } from "../master/history.js";
import { loadGenerator } from "../master/index.js";
import { readFailureInputs } from "../master/escalation-input.js";
import { previewSchedule, type SchedulePreview } from "../master/schedule.js";
import { DEFAULTS, hasLease, type HistoryMove, keyLayout, readPrefixPaged } from "../node/index.js";
import { duration, parseConfig, percent, sharedConfigSchema } from "./config.js";
import { connectEtcd } from "./connect.js";
import { EXIT_OK, usageError } from "./errors.js";
import { printableDeep } from "./printable.js";

export interface WorkerPlan {
  name: string;
  /** `cordon`, `drain`, or absent; `gone` for a worker that holds tasks but is no longer registered. */
  mode?: "cordon" | "drain" | "gone";
  tasks: number;
  added: number;
  removed: number;
  movedIn: number;
  movedOut: number;
  /** Resulting tasks per group ("" is the default group). */
  groups: Record<string, number>;
  labels?: Record<string, string>;
}

export interface PlanReport {
  revision: number;
  paused?: string;
  tasks: number;
  workers: WorkerPlan[];
  added: number;
  removed: number;
  moved: number;
  unassigned: string[];
  /** Unassigned tasks per reason kind, and each with its reason. */
  unassignedReasons: Record<string, number>;
  reasons: Record<string, UnassignedReason>;
  /** Largest difference in load between two workers that take new tasks, per group and in total ("*"). */
  balance: Record<string, number>;
  removalGuard: { assigned: number; removing: number; maxRemovalPercent: number; refusal?: string };
  moves: HistoryMove[];
}

export async function runPlan(options: Record<string, unknown>): Promise<number> {
  const modulePath = options.generator;
  if (typeof modulePath !== "string" || modulePath === "")
    throw usageError("--generator <module> is required");
  const config = parseConfig(
    sharedConfigSchema.extend({
      json: z.boolean().default(false),
      timeout: duration.default(DEFAULTS.timeoutMs),
      maxRemoval: percent.default(DEFAULTS.maxRemovalPercent),
    }),
    options,
  );
  const generator = await loadGenerator(modulePath);
  const client = await connectEtcd(config);
  try {
    const keys = keyLayout(config.root);
    // The generator's logs (and bad records) go to stderr, so --json output stays clean.
    const logger = pino({ level: config.logLevel, base: { role: "plan" } }, pino.destination(2));
    const registrations = await readPrefixPaged(client, keys.workersPrefix, { keysOnly: true });
    const workers = registrations.kvs.flatMap((kv) =>
      hasLease(kv, logger) ? (keys.parseWorker(kv.key.toString()) ?? []) : [],
    );
    const preview = await previewSchedule({
      client,
      keys,
      generator,
      failures: await readFailureInputs(client, keys, logger),
      timeoutMs: config.timeout,
      liveWorkers: () => workers,
      logger,
      signal: new AbortController().signal,
    });
    const report = planReport(preview, config.maxRemoval);
    process.stdout.write(
      config.json ? `${JSON.stringify(report, null, 2)}\n` : renderPlan(printableDeep(report)),
    );
    return EXIT_OK;
  } finally {
    client.close();
  }
}

/** The figures of a preview: per worker, in total, the balance and the removal guard's verdict. */
export function planReport(preview: SchedulePreview, maxRemovalPercent: number): PlanReport {
  const { target, current, controls } = preview;
  const changes = taskChanges(current, target);
  const groupOf = new Map(preview.tasks.map((valid) => [valid.task.id, valid.task.group ?? ""]));
  const weightOf = new Map(preview.tasks.map((valid) => [valid.task.id, valid.task.weight ?? 1]));
  const registered = new Set(preview.workers.map((worker) => worker.name));
  const labelsOf = new Map(preview.workers.map((worker) => [worker.name, worker.labels]));
  const names = [...new Set([...registered, ...current.keys()])].sort();
  const count = (moves: HistoryMove[], side: "from" | "to", name: string) =>
    moves.filter((move) => move[side] === name).length;
  const loads = new Map<string, Map<string, number>>();
  const workers = names.map((name): WorkerPlan => {
    const ids = target?.assignment[name] ?? [];
    const groups: Record<string, number> = {};
    const load = new Map<string, number>([["*", 0]]);
    for (const id of ids) {
      const group = groupOf.get(id) ?? "";
      groups[group] = (groups[group] ?? 0) + 1;
      for (const key of [group, "*"]) load.set(key, (load.get(key) ?? 0) + (weightOf.get(id) ?? 1));
    }
    const mode = registered.has(name) ? cordonMode(controls.cordons, name) : "gone";
    const labels = labelsOf.get(name);
    if (mode === undefined) loads.set(name, load);
    return {
      name,
      ...(mode ? { mode } : {}),
      tasks: ids.length,
      added: target?.add[name]?.length ?? 0,
      removed: target ? (target.remove[name]?.length ?? 0) : (current.get(name)?.size ?? 0),
      movedIn: count(changes.moved, "to", name),
      movedOut: count(changes.moved, "from", name),
      groups,
      ...(labels ? { labels } : {}),
    };
  });
  const balance: Record<string, number> = {};
  for (const group of ["*", ...new Set(groupOf.values())]) {
    const values = [...loads.values()].map((load) => load.get(group) ?? 0);
    balance[group] = values.length === 0 ? 0 : Math.max(...values) - Math.min(...values);
  }
  const guard = removalCheck(preview.owners, preview.byId, maxRemovalPercent, false);
  return {
    revision: preview.revision,
    ...(controls.paused ? { paused: controls.paused.reason ?? "" } : {}),
    tasks: preview.tasks.length,
    workers,
    added: changes.added.length,
    removed: changes.removed.length,
    moved: changes.moved.length,
    unassigned: target ? target.unassigned : preview.tasks.map((valid) => valid.task.id),
    ...reasonsOf(target, preview),
    balance,
    removalGuard: { ...guard, maxRemovalPercent },
    moves: [...changes.moved, ...changes.removed, ...changes.added],
  };
}

export function renderPlan(report: PlanReport): string {
  const lines = [
    `plan at revision ${report.revision}: ${report.tasks} tasks over ${report.workers.length} workers; ` +
      `${report.moved} moved, ${report.removed} stopped (no longer generated), ${report.unassigned.length} unassigned`,
  ];
  if (report.paused !== undefined)
    lines.push(
      `schedules are paused${report.paused ? ` (${report.paused})` : ""}: the leader would write nothing now`,
    );
  if (report.removalGuard.refusal) lines.push(`the leader would refuse this: ${report.removalGuard.refusal}`);
  const labelled = report.workers.some((worker) => worker.labels !== undefined);
  const header = [
    "worker",
    "mode",
    "tasks",
    "added",
    "removed",
    "in",
    "out",
    ...(labelled ? ["labels"] : []),
    "groups",
  ];
  const rows = report.workers.map((worker) => [
    worker.name,
    worker.mode ?? "-",
    String(worker.tasks),
    `+${worker.added}`,
    `-${worker.removed}`,
    String(worker.movedIn),
    String(worker.movedOut),
    ...(labelled ? [labelText(worker.labels)] : []),
    Object.entries(worker.groups)
      .map(([group, n]) => `${group || "(default)"}=${n}`)
      .join(" "),
  ]);
  const widths = header.map((_, i) => Math.max(...[header, ...rows].map((row) => row[i].length)));
  for (const row of [header, ...rows])
    lines.push(
      row
        .map((cell, i) => cell.padEnd(widths[i]))
        .join("  ")
        .trimEnd(),
    );
  lines.push(
    `balance (largest load difference between workers taking tasks): ${Object.entries(report.balance)
      .map(([group, spread]) => `${group === "*" ? "total" : group || "(default)"}=${spread}`)
      .join(" ")}`,
  );
  if (report.unassigned.length > 0) {
    const kinds = Object.entries(report.unassignedReasons).map(([kind, n]) => `${kind} ${n}`);
    lines.push(`unassigned ${report.unassigned.length} (${kinds.join(", ")}):`);
    for (const id of report.unassigned.slice(0, 20))
      lines.push(`  ${id}: ${report.reasons[id]?.text ?? "capacity"}`);
    if (report.unassigned.length > 20) lines.push(`  … and ${report.unassigned.length - 20} more`);
  }
  return `${lines.join("\n")}\n`;
}

function reasonsOf(
  target: Plan | undefined,
  preview: SchedulePreview,
): Pick<PlanReport, "unassignedReasons" | "reasons"> {
  const ids = target ? target.unassigned : preview.tasks.map((valid) => valid.task.id);
  const summary = unassignedSummary(target, ids, ids.length);
  const reasons: Record<string, UnassignedReason> = {};
  for (const task of summary.unassignedTasks ?? [])
    reasons[task.id] = { kind: task.kind as ReasonKind, text: task.text };
  return { unassignedReasons: summary.unassignedReasons ?? {}, reasons };
}
