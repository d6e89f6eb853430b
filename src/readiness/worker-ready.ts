import type { Etcd3 } from "etcd3";
import type { KeyLayout } from "../node/index.js";
import { type ClusterView, readClusterView } from "./cluster-view.js";
import { workerReadiness } from "./readiness.js";

/**
 * Whether `worker` is ready, as `workerReadiness` judges it from etcd, reading its tasks and statuses
 * only once its registration, the barrier marker and the plan allow it: a worker re-checking itself
 * after each task start reads a few keys while it is not in a plan, not every task it runs. The
 * answer is the verdict of one read at one revision (the small one's "not ready", or the full one's).
 */
export function isWorkerReady(client: Etcd3, keys: KeyLayout, worker: string): Promise<boolean> {
  return new WorkerReadyCheck(client, keys, worker).ready();
}

/**
 * A worker's repeated readiness checks (`isWorkerReady`, one after another): the small read of the
 * gate (registration, marker, plan, leader) goes first only while the last check found the gate
 * closed; while it was open, one read of everything (the gate's keys included), so a worker in a plan
 * spends one transaction per check, not two. Every answer is still the verdict of one read at one
 * revision: a full read judges the gate too, and a gate found closed there sends the next check back
 * to the small read.
 */
export class WorkerReadyCheck {
  private gateOpen = false;

  constructor(
    private readonly client: Etcd3,
    private readonly keys: KeyLayout,
    private readonly worker: string,
  ) {}

  /**
   * `planned`: the caller's own watch of the plan shows this worker in it, so the gate is likely
   * open: one read of everything at once (which judges the gate too), not the small read first.
   */
  async ready(planned = false): Promise<boolean> {
    if (!this.gateOpen && !planned) {
      const gate = await readClusterView(this.client, this.keys, { worker: this.worker, tasks: false });
      this.gateOpen = workerReadiness(this.worker, gate).ready;
      if (!this.gateOpen) return false;
    }
    const full = await readClusterView(this.client, this.keys, { worker: this.worker });
    this.gateOpen = gateAllows(this.worker, full);
    return workerReadiness(this.worker, full).ready;
  }
}

/** The gate's verdict in a full read: its tasks and statuses left out, as the small read leaves them. */
function gateAllows(worker: string, view: ClusterView): boolean {
  return workerReadiness(worker, { ...view, assignments: new Map(), statuses: new Map() }).ready;
}
