import type { Plan, ReasonKind } from "../balancer/index.js";
import type { UnassignedTask } from "../node/index.js";

/** Why tasks stayed unassigned, as the plan and history records keep it (omitted when none did). */
export interface UnassignedSummary {
  unassignedReasons?: Partial<Record<ReasonKind, number>>;
  unassignedTasks?: UnassignedTask[];
}

/** Unassigned tasks the plan record lists with their reason. */
export const PLAN_UNASSIGNED_LIMIT = 100;

const NO_WORKER = { kind: "capacity", text: "capacity: no worker may take tasks" } as const;

/** Counts per reason kind and the first `limit` unassigned tasks (priority order) with their reason. */
export function unassignedSummary(
  target: Plan | undefined,
  taskIds: readonly string[],
  limit: number,
): UnassignedSummary {
  const ids = target ? target.unassigned : taskIds;
  if (ids.length === 0) return {};
  const reasonOf = (id: string) => target?.reasons[id] ?? NO_WORKER;
  const counts: Partial<Record<ReasonKind, number>> = {};
  for (const id of ids) {
    const { kind } = reasonOf(id);
    counts[kind] = (counts[kind] ?? 0) + 1;
  }
  return {
    unassignedReasons: counts,
    unassignedTasks: ids.slice(0, limit).map((id) => ({ id, ...reasonOf(id) })),
  };
}
