/** `escheduler history` shows the schedules and the operator's actions (the audit trail) in one timeline. */
import type { AuditEntry, HistoryEntry } from "../operator/index.js";

export type TimelineEntry = (HistoryEntry & { kind: "schedule" }) | (AuditEntry & { kind: "action" });

/** Schedules and actions in time order, the newest `limit` of them, oldest first. */
export function mergeHistory(
  schedules: readonly HistoryEntry[],
  actions: readonly AuditEntry[],
  limit: number,
): TimelineEntry[] {
  const merged: TimelineEntry[] = [
    ...schedules.map((entry) => ({ kind: "schedule" as const, ...entry })),
    ...actions.map((entry) => ({ kind: "action" as const, ...entry })),
  ];
  const time = (entry: TimelineEntry) => (entry.kind === "action" ? entry.atMs : Date.parse(entry.at) || 0);
  // A stable sort: records of one kind keep their order (by revision, by key) at equal times.
  merged.sort((a, b) => time(a) - time(b));
  return merged.slice(Math.max(0, merged.length - limit));
}

/** One action per line: time, "action", what on what, by whom and why. */
export function auditLine(entry: AuditEntry): string {
  const target = [
    entry.worker,
    entry.task === undefined ? undefined : `task ${entry.task}`,
    entry.to === undefined ? undefined : `→ ${entry.to}`,
  ].filter((part) => part !== undefined);
  const why = entry.reason ? `: ${entry.reason}` : "";
  return [entry.at, "action ", entry.action, ...target, `by ${entry.by}${why}`].join("  ");
}
