import type { CurrentAssignment } from "../../src/master/changes.js";

/**
 * The removal guard's counts as they were computed before a schedule's indexes (a set of every
 * assigned id, tasks between owners included, and a set of the generated ids): the reference the
 * guard's `removalCheck` is held against.
 */
export function removalReference(
  current: CurrentAssignment,
  generatedIds: readonly string[],
  moving: readonly string[],
): { assigned: number; removing: number } {
  const generated = new Set(generatedIds);
  const assignedIds = new Set<string>(moving);
  for (const ids of current.values()) for (const id of ids.keys()) assignedIds.add(id);
  let removing = 0;
  for (const id of assignedIds) if (!generated.has(id)) removing++;
  return { assigned: assignedIds.size, removing };
}
