import type { Etcd3 } from "etcd3";
import type { KeyLayout } from "../node/index.js";
import { readClusterView } from "./cluster-view.js";
import { workerReadiness } from "./readiness.js";

/**
 * Whether `worker` is ready, as `workerReadiness` judges it from etcd, reading its tasks and statuses
 * only once its registration, the barrier marker and the plan allow it: a worker re-checking itself
 * after each task start reads a few keys while it is not in a plan, not every task it runs. The
 * answer is the verdict of one read at one revision (the small one's "not ready", or the full one's).
 */
export async function isWorkerReady(client: Etcd3, keys: KeyLayout, worker: string): Promise<boolean> {
  const gate = await readClusterView(client, keys, { worker, tasks: false });
  if (!workerReadiness(worker, gate).ready) return false;
  return workerReadiness(worker, await readClusterView(client, keys, { worker })).ready;
}
