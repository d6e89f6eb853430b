/** What the operator set, as `status` shows it: who cordoned or drained which worker and why, and the pins. */
import ms from "ms";
import type { Controls } from "../master/controls.js";
import type { PlanRecord } from "../node/index.js";
import { actorText } from "../operator/audit.js";
import type { ClusterView } from "../readiness/index.js";

/** A pin (`escheduler task pin`) and whether the task is where it says. */
export interface PinReport {
  task: string;
  worker: string;
  at: string;
  by?: string;
  reason?: string;
  /** The task is assigned to the pinned worker now. */
  holds: boolean;
  /** Why the last plan did not follow it (the worker is not eligible). */
  ignored?: string;
}

/** The pins, each with where its task is and why the last plan ignored it (if it did). */
export function pinReports(controls: Controls, view: ClusterView, plan: PlanRecord | undefined): PinReport[] {
  const pins = controls.pins ?? new Map();
  if (pins.size === 0) return [];
  const ignored = new Map((plan?.ignoredPins ?? []).map((pin) => [pin.id, pin]));
  return [...pins]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([task, pin]) => {
      const skipped = ignored.get(task);
      return {
        task,
        worker: pin.worker,
        at: pin.at,
        ...(pin.by ? { by: pin.by } : {}),
        ...(pin.reason ? { reason: pin.reason } : {}),
        holds: view.assignments.get(pin.worker)?.includes(task) ?? false,
        ...(skipped && skipped.worker === pin.worker ? { ignored: skipped.reason } : {}),
      };
    });
}

/** "by alice@ops: incident 4711" (with a leading space), or "" for a record older than the audit trail. */
export function byText(record: { by?: string; reason?: string }): string {
  const text = actorText(record);
  if (text === undefined) return "";
  return record.by ? ` by ${text}` : ` (${text})`;
}

/** The CONTROLS section: cordons and drains with who and why, then the pins. */
export function renderControls(
  report: {
    workers: ReadonlyArray<{
      name: string;
      cordon?: string;
      cordonBy?: string;
      cordonReason?: string;
      cordonAt?: string;
    }>;
    pins: readonly PinReport[];
  },
  now: number,
): string[] {
  const lines: string[] = [];
  for (const worker of report.workers) {
    if (!worker.cordon || !(worker.cordonBy || worker.cordonReason)) continue;
    const what = worker.cordon === "drain" ? "draining" : "cordoned";
    const when = worker.cordonAt ? ` ${ago(worker.cordonAt, now)}` : "";
    lines.push(
      `${worker.name} ${what}${when}${byText({ by: worker.cordonBy, reason: worker.cordonReason })}`,
    );
  }
  for (const pin of report.pins) {
    const state = pin.holds ? "holds" : pin.ignored ? `ignored: ${pin.ignored}` : "not there yet";
    lines.push(`task ${pin.task} pinned to ${pin.worker}${byText(pin)} (${state})`);
  }
  return lines.length > 0 ? ["", "CONTROLS", ...lines] : [];
}

function ago(time: string, now: number): string {
  const at = Date.parse(time);
  return Number.isNaN(at) ? time : `${ms(Math.max(0, now - at))} ago`;
}
