import type { Etcd3 } from "etcd3";
import type { KeyLayout, Logger } from "../node/index.js";
import { planOf } from "../readiness/index.js";
import { PrefixWatcher, type WatchGroup } from "../watcher/index.js";

/**
 * `/R/plan` as a worker's watch of it shows it: whether the last applied plan names the worker,
 * parsed once per value. What the watch shows is a view of etcd at some revision: "not in the plan"
 * from it is a verdict etcd gave, and a newer plan reaches the watch (and its `change` listeners).
 */
export class WatchedPlan {
  readonly watcher: PrefixWatcher;
  private parsed?: string;
  private named = false;

  constructor(
    client: Etcd3,
    private readonly keys: KeyLayout,
    private readonly worker: string,
    private readonly logger: Logger,
    group?: WatchGroup,
  ) {
    this.watcher = new PrefixWatcher(client, keys.plan, { logger, group });
  }

  /** Whether the plan the watch holds names the worker (false: no plan, an unreadable one, or another's). */
  namesWorker(): boolean {
    const value = this.watcher.entries.get(this.keys.plan);
    if (value !== this.parsed) {
      this.parsed = value;
      const plan = value === undefined ? undefined : planOf(this.keys, value, this.logger);
      this.named = plan?.workers.includes(this.worker) ?? false;
    }
    return this.named;
  }
}
