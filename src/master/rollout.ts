/**
 * Which rollout generation is the newest: the planner sends moves there first while two or more are
 * registered (balancer/rollout.ts). The newest is the generation of the most recently registered live
 * worker, the next the one registered most recently among the others, and so on: starting a new build
 * makes it the newest, and rolling back to an earlier build makes that one the newest again as soon as
 * its first worker registers.
 */

/** The generations of `workers`, newest first (a worker without one is of generation ""). */
export function generationOrder(
  workers: ReadonlyArray<{ generation?: string; registeredAt?: number }>,
): string[] {
  const latest = new Map<string, number>();
  for (const worker of workers) {
    const generation = worker.generation ?? "";
    latest.set(generation, Math.max(latest.get(generation) ?? 0, worker.registeredAt ?? 0));
  }
  return [...latest]
    .sort(([a, at], [b, bt]) => bt - at || (a < b ? -1 : a > b ? 1 : 0))
    .map(([generation]) => generation);
}
