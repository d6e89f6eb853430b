import type { Etcd3 } from "etcd3";
import type { KeyLayout, Logger } from "../node/index.js";
import { hasLease, readPrefixPaged } from "../node/index.js";
import { PrefixWatcher } from "../watcher/index.js";
import type { FencedWriter } from "./fencing.js";

/** A task put the schedule decided on. */
export interface PlannedPut {
  taskId: string;
  worker: string;
  /** `/R/task/<worker>/<id>` */
  key: string;
  value: string;
  priority: number;
}

/** A put that must wait until other workers' status keys for the same task are gone. */
export interface HeldPut extends PlannedPut {
  /** Status keys of the task on other workers, present at the revision the statuses were read. */
  blockers: string[];
  /** Workers that still report the task. */
  from: string[];
}

export interface HandoffWaitEvent {
  task: string;
  from: string;
  to: string;
  ms: number;
}

interface Hold {
  put: HeldPut;
  remaining: Set<string>;
  /** The statuses were read at this revision: a blocker counts as gone only in a view at or after it. */
  readRevision: number;
  since: number;
}

/**
 * Hand-off (`--handoff wait`): a task is written to its new worker only after every other worker's
 * status key for it is gone (stopped, or its lease expired), so it never runs twice. Holds outlive the
 * schedule that made them; the next schedule cancels them and decides again from what etcd says then.
 */
export class HandoffGate {
  private readonly watcher: PrefixWatcher;
  private readonly holdsByStatusKey = new Map<string, Set<Hold>>();
  private readonly waiting = new Set<Hold>();
  private ready: Hold[] = [];
  private flushScheduled = false;
  private inFlight = new Set<Promise<void>>();
  private writing = 0;
  private cancelled = new AbortController();

  constructor(
    private readonly client: Etcd3,
    private readonly keys: KeyLayout,
    private readonly writer: FencedWriter,
    private readonly options: {
      logger: Logger;
      onReleased: (event: HandoffWaitEvent) => void;
      onWriteFailed: (error: unknown) => void;
    },
  ) {
    this.watcher = new PrefixWatcher(client, keys.statusPrefix, { logger: options.logger });
    this.watcher.on("change", (change) => {
      if (change.type === "delete") this.recheck(this.holdsByStatusKey.get(change.key));
    });
    this.watcher.on("resync", () => {
      for (const holds of [...this.holdsByStatusKey.values()]) this.recheck(holds);
    });
  }

  async start(signal: AbortSignal): Promise<void> {
    await this.watcher.start(signal);
  }

  /** Puts waiting for a status key to go. */
  get pending(): number {
    return this.waiting.size;
  }

  /** Puts not written yet: waiting for a status key to go, or being written. */
  get unsettled(): number {
    return this.waiting.size + this.ready.length + this.writing;
  }

  /**
   * Reads the status keys now (call it after the removals were written) and splits `puts` into those
   * that may be written at once and those that must wait for another worker to stop the task.
   */
  async partition(
    puts: readonly PlannedPut[],
  ): Promise<{ ready: PlannedPut[]; held: HeldPut[]; revision: number }> {
    if (puts.length === 0) return { ready: [], held: [], revision: 0 };
    const prefix = this.keys.statusPrefix;
    const response = await readPrefixPaged(this.client, prefix, {
      keysOnly: true,
    });
    const targets = new Map(puts.map((put) => [put.taskId, put.worker]));
    const reportedBy = new Map<string, string[]>();
    for (const kv of response.kvs) {
      const status = this.keys.parseStatus(kv.key.toString());
      if (!status || targets.get(status.taskId) === undefined || targets.get(status.taskId) === status.worker)
        continue;
      // A status without a lease was written by hand: no worker runs the task behind it, and it never expires.
      if (!hasLease(kv, this.options.logger)) continue;
      const workers = reportedBy.get(status.taskId) ?? [];
      workers.push(status.worker);
      reportedBy.set(status.taskId, workers);
    }
    const ready: PlannedPut[] = [];
    const held: HeldPut[] = [];
    for (const put of puts) {
      const from = reportedBy.get(put.taskId);
      if (!from) ready.push(put);
      else held.push({ ...put, from, blockers: from.map((worker) => this.keys.status(worker, put.taskId)) });
    }
    return { ready, held, revision: response.revision };
  }

  /** Starts waiting; each put is written (fenced) as soon as its blockers are gone in a view at or after `readRevision`. */
  hold(puts: readonly HeldPut[], readRevision: number): void {
    const since = Date.now();
    for (const put of puts) {
      const hold: Hold = { put, remaining: new Set(put.blockers), readRevision, since };
      this.waiting.add(hold);
      for (const key of put.blockers) {
        const holds = this.holdsByStatusKey.get(key) ?? new Set();
        holds.add(hold);
        this.holdsByStatusKey.set(key, holds);
      }
      this.options.logger.debug(
        { task: put.taskId, from: put.from, to: put.worker },
        "hand-off: waiting for the old owner to stop the task",
      );
      this.recheck(new Set([hold]));
    }
    // One line per schedule, however many tasks move (per-task lines are at debug).
    if (puts.length > 0)
      this.options.logger.info({ tasks: puts.length }, "hand-off: waiting for old owners to stop tasks");
  }

  /** Drops every waiting put and resolves once puts already being written have landed or failed. */
  async cancelPending(): Promise<void> {
    this.cancelled.abort();
    this.cancelled = new AbortController();
    this.holdsByStatusKey.clear();
    this.waiting.clear();
    this.ready = [];
    await Promise.all(this.inFlight);
  }

  async close(): Promise<void> {
    await this.cancelPending();
    await this.watcher.close();
  }

  private recheck(holds: Set<Hold> | undefined): void {
    if (!holds) return;
    for (const hold of [...holds]) {
      for (const key of hold.remaining) {
        if (this.watcher.revision >= hold.readRevision && !this.watcher.entries.has(key)) {
          hold.remaining.delete(key);
          this.holdsByStatusKey.get(key)?.delete(hold);
          if (this.holdsByStatusKey.get(key)?.size === 0) this.holdsByStatusKey.delete(key);
        }
      }
      if (hold.remaining.size === 0) this.release(hold);
    }
  }

  private release(hold: Hold): void {
    this.waiting.delete(hold);
    this.ready.push(hold);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // Puts released by one burst of status deletions share transactions.
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    const batch = this.ready;
    this.ready = [];
    if (batch.length === 0) return;
    const signal = this.cancelled.signal;
    this.writing += batch.length;
    let settled = false;
    const settle = () => {
      if (!settled) this.writing -= batch.length;
      settled = true;
    };
    const write = this.writer
      .apply(
        batch.map(({ put }) => ({ type: "put", key: put.key, value: put.value, priority: put.priority })),
        signal,
      )
      .then(() => {
        // Settled before the listeners hear of it, so a paced move may take the freed slot at once.
        settle();
        const now = Date.now();
        this.options.logger.info(
          {
            tasks: batch.length,
            longestWaitMs: batch.reduce((longest, hold) => Math.max(longest, now - hold.since), 0),
          },
          "hand-off: tasks written to their new workers",
        );
        for (const { put, since } of batch) {
          this.options.onReleased({
            task: put.taskId,
            from: put.from.join(","),
            to: put.worker,
            ms: now - since,
          });
        }
      })
      .catch((error: unknown) => {
        settle();
        if (!signal.aborted) this.options.onWriteFailed(error);
      })
      .finally(() => this.inFlight.delete(write));
    this.inFlight.add(write);
  }
}
