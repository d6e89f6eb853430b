import type { Etcd3 } from "etcd3";
import { assertValidName, keyLayout } from "../node/index.js";
import { PrefixWatcher } from "../watcher/index.js";

export interface DrainedResult {
  /** True once the worker held no task: none assigned, none with a status (every stop has returned). */
  drained: boolean;
  /** Tasks still assigned to it or still stopping when the wait ended. */
  holding: number;
}

/**
 * Waits until `worker` holds nothing — no task key and no status key under it (a status outlives its
 * task key until the handler's stop returns) — or until `timeoutMs` has passed.
 */
export async function waitUntilDrained(
  client: Etcd3,
  root: string,
  worker: string,
  options: { timeoutMs: number },
): Promise<DrainedResult> {
  assertValidName("worker name", worker);
  const keys = keyLayout(root);
  const deadline = AbortSignal.timeout(options.timeoutMs);
  const tasks = new PrefixWatcher(client, keys.workerTasksPrefix(worker));
  const statuses = new PrefixWatcher(client, keys.workerStatusPrefix(worker));
  const watchers = [tasks, statuses];
  let wake = () => {};
  for (const watcher of watchers) watcher.on("change", () => wake());
  const holding = () => {
    const ids = new Set<string>();
    for (const [key] of tasks.entries) ids.add(key.slice(tasks.prefix.length));
    for (const [key] of statuses.entries) ids.add(key.slice(statuses.prefix.length));
    return ids.size;
  };
  try {
    // Tasks first: a drained worker takes nothing new, so once its tasks are gone only stops remain.
    await tasks.start(deadline);
    await statuses.start(deadline);
    for (;;) {
      const changed = new Promise<void>((resolve) => {
        wake = resolve;
        deadline.addEventListener("abort", () => resolve(), { once: true });
      });
      // The two views may stand at different revisions: an empty pair is confirmed by reading both now.
      if (holding() === 0 && (await holdsNothing(client, tasks.prefix, statuses.prefix)))
        return { drained: true, holding: 0 };
      if (deadline.aborted) return { drained: false, holding: holding() };
      await changed;
    }
  } catch (error) {
    if (deadline.aborted) return { drained: false, holding: holding() };
    throw error;
  } finally {
    await Promise.all(watchers.map((watcher) => watcher.close()));
  }
}

/** Reads the worker's tasks, then its statuses (a status cannot appear for a task already gone). */
async function holdsNothing(client: Etcd3, tasksPrefix: string, statusPrefix: string): Promise<boolean> {
  if ((await client.getAll().prefix(tasksPrefix).count()) > 0) return false;
  return (await client.getAll().prefix(statusPrefix).count()) === 0;
}
