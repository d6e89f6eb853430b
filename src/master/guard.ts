import type { TaskOwners } from "./changes.js";

/** The removal guard's reading of one schedule. */
export interface RemovalCheck {
  /** Distinct tasks assigned now. */
  assigned: number;
  /** Of those, the tasks the generator no longer returns. */
  removing: number;
  /** Why the schedule is refused, or undefined when it may go ahead. */
  refusal?: string;
}

/**
 * Refuses a schedule that would stop more than `maxRemovalPercent` of the assigned tasks because the
 * generator stopped returning them (an inventory answering `[]`). A first schedule (nothing assigned),
 * a 100 % limit and an operator's one-off `allowRemoval` are never refused. Moves do not count. Tasks
 * between owners (`moving`: moves begun, removed from the old worker, not yet written to the new) count
 * as assigned: dropping them stops them as surely, and a fleet whose tasks are all in flight (a worker
 * gone, a leader change) must not let an inventory answering `[]` through.
 *
 * Read from a schedule's indexes: the current owner of each task id (`ownersOf`), and the generated ids.
 */
export function removalCheck(
  owners: TaskOwners,
  generated: { has(id: string): boolean },
  maxRemovalPercent: number,
  allowRemoval: boolean,
  moving: Iterable<string> = [],
): RemovalCheck {
  let removing = owners.missingFrom(generated);
  const between = new Set<string>();
  for (const id of moving) if (!owners.has(id)) between.add(id);
  for (const id of between) if (!generated.has(id)) removing++;
  const assigned = owners.size + between.size;
  const check: RemovalCheck = { assigned, removing };
  if (allowRemoval || assigned === 0 || maxRemovalPercent >= 100) return check;
  if ((removing / assigned) * 100 <= maxRemovalPercent) return check;
  return {
    ...check,
    refusal:
      `removal guard: the schedule would stop ${removing} of ${assigned} assigned tasks ` +
      `(${Math.round((removing / assigned) * 100)}% > --max-removal ${maxRemovalPercent}%); ` +
      `run "escheduler schedule --allow-removal" if the generator is right`,
  };
}
