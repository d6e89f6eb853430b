/** How `status` shows a rollout: the generations of the registered workers, newest first. */

interface GenerationCarrier {
  generation?: string;
  startedAt?: string;
  registered: boolean;
}

/**
 * One line while two or more generations are registered ("rollout: 2 generations, newest first: v2
 * (3 workers), v1 (2 workers)"), else undefined. Newest is the generation of the worker started last,
 * as the leader judges it by registration order.
 */
export function rolloutLine(workers: readonly GenerationCarrier[]): string | undefined {
  const generations = new Map<string, { workers: number; latest: number }>();
  for (const worker of workers) {
    if (!worker.registered) continue;
    const name = worker.generation ?? "";
    const entry = generations.get(name) ?? { workers: 0, latest: 0 };
    entry.workers++;
    entry.latest = Math.max(entry.latest, Date.parse(worker.startedAt ?? "") || 0);
    generations.set(name, entry);
  }
  if (generations.size < 2) return undefined;
  const listed = [...generations]
    .sort(([a, x], [b, y]) => y.latest - x.latest || a.localeCompare(b))
    .map(([name, entry]) => `${name || "(none)"} (${entry.workers} worker${entry.workers === 1 ? "" : "s"})`);
  return `rollout: ${generations.size} generations, newest first: ${listed.join(", ")}`;
}
