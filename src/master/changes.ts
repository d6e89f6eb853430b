import type { Plan } from "../balancer/index.js";
import type { KeyLayout } from "../node/index.js";
import type { WriteOp } from "./batches.js";
import type { PlannedPut } from "./handoff.js";
import type { ValidTask } from "./validation.js";

/** worker → task id → the value stored under `/R/task/<worker>/<id>`. */
export type CurrentAssignment = Map<string, Map<string, string>>;

/** What one schedule writes: deletes first, then puts (highest priority first). */
export interface ScheduleChanges {
  removals: WriteOp[];
  puts: PlannedPut[];
  /** Tasks newly placed on a worker. */
  added: number;
  /** Tasks that stay on their worker but whose stored value changed (payload, priority, …). */
  updated: number;
  removed: number;
  /** Tasks taken from one worker and given to another. */
  moved: number;
}

/**
 * Turns a plan into key writes. Additions from all workers are interleaved by priority (then by their
 * place in each worker's list), so every worker receives its most important tasks first.
 * Without a plan (no live worker) every current assignment is removed.
 */
export function scheduleChanges(
  keys: KeyLayout,
  plan: Plan | undefined,
  tasks: ReadonlyMap<string, ValidTask>,
  current: CurrentAssignment,
): ScheduleChanges {
  const removals: WriteOp[] = [];
  const removedIds = new Set<string>();
  const removeLists = plan
    ? Object.entries(plan.remove)
    : [...current].map(([w, ids]) => [w, [...ids.keys()]] as const);
  for (const [worker, ids] of removeLists) {
    for (const id of ids) {
      removals.push({ type: "delete", key: keys.task(worker, id) });
      removedIds.add(id);
    }
  }

  const ranked: Array<{ put: PlannedPut; rank: number }> = [];
  let added = 0;
  let updated = 0;
  let moved = 0;
  for (const [worker, ids] of Object.entries(plan?.assignment ?? {})) {
    const additions = new Set(plan?.add[worker] ?? []);
    const stored = current.get(worker);
    let rank = 0;
    for (const id of plan?.add[worker] ?? []) {
      const valid = tasks.get(id);
      if (!valid) continue;
      ranked.push({ put: putOf(keys, worker, valid), rank: rank++ });
      added++;
      if (removedIds.has(id)) moved++;
    }
    for (const id of ids) {
      const valid = tasks.get(id);
      if (!valid || additions.has(id) || stored?.get(id) === valid.value) continue;
      ranked.push({ put: putOf(keys, worker, valid), rank: rank++ });
      updated++;
    }
  }
  ranked.sort((a, b) => b.put.priority - a.put.priority || a.rank - b.rank);
  return {
    removals,
    puts: ranked.map((entry) => entry.put),
    added,
    updated,
    removed: removals.length,
    moved,
  };
}

function putOf(keys: KeyLayout, worker: string, valid: ValidTask): PlannedPut {
  return {
    taskId: valid.task.id,
    worker,
    key: keys.task(worker, valid.task.id),
    value: valid.value,
    priority: valid.task.priority ?? 0,
  };
}
