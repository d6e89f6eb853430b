import type { KeyLayout, Logger } from "../node/index.js";
import { delay, exponentialBackoff } from "../runtime/index.js";
import type { WriteOp } from "./batches.js";
import { completeMove, retargetMove } from "./begun-moves.js";
import type { LeaderWriter } from "./fencing.js";
import type { HandoffWaitEvent, HeldPut, PlannedPut } from "./handoff-puts.js";
import type { StatusSource, StatusView } from "./status-source.js";
import { SummedLog } from "./summed-log.js";

export type { HandoffWaitEvent, HeldPut, PlannedPut } from "./handoff-puts.js";

interface Hold {
  put: HeldPut;
  remaining: Set<string>;
  /** A blocker counts as gone only in a view (or a read) at or after this revision: the removal's. */
  readRevision: number;
  since: number;
  ready: boolean;
  /** Held back while a schedule decides on it (see `freeze`). */
  frozen: boolean;
}

/**
 * Hand-off (`--handoff wait`): a task is written to its new worker only after every other worker's
 * status key for it is gone (stopped, or its lease expired), so it never runs twice. A hold is a move
 * already begun (its task was removed from the old owner), so it always finishes: a later applied
 * schedule may re-target it (`replan`), a refused or paused one leaves it as it is. While a schedule
 * decides, the holds it read as unassigned are frozen: they may become ready but are not written until
 * it thaws them (holds the schedule itself makes are written as soon as they are ready). A hold whose
 * target is not a live worker waits (ready) until the worker is back or a schedule re-targets it.
 */
export class HandoffGate {
  private readonly view: StatusView;
  private readonly holds = new Map<string, Hold>();
  private readonly holdsByStatusKey = new Map<string, Set<Hold>>();
  private flushScheduled = false;
  /** Between `freeze` and `thaw`: a schedule is deciding on the holds it read as unassigned. */
  private deciding = false;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly reads = new Set<Promise<void>>();
  private writing = 0;
  private closed = new AbortController();
  private readonly retryBackoff = exponentialBackoff({ initialMs: 200, maxMs: 5_000 });
  private retryTimer?: NodeJS.Timeout;
  private readonly log: SummedLog<"held" | "written">;

  constructor(
    readonly source: StatusSource,
    private readonly keys: KeyLayout,
    private readonly writer: LeaderWriter,
    private readonly options: {
      logger: Logger;
      onReleased: (event: HandoffWaitEvent) => void;
      onWriteFailed: (error: unknown) => void;
      /** Registered workers now (absent: every target counts as live). */
      liveWorkers?: () => ReadonlySet<string>;
    },
  ) {
    this.view = source.view;
    this.log = new SummedLog(options.logger, {
      held: "hand-off: waiting for old owners to stop tasks",
      written: "hand-off: tasks written to their new workers",
    });
    this.view.on("change", (change) => {
      if (change.type === "delete") this.recheck(this.holdsByStatusKey.get(change.key));
    });
    this.view.on("resync", () => {
      for (const holds of [...this.holdsByStatusKey.values()]) this.recheck(holds);
    });
  }

  async start(signal: AbortSignal): Promise<void> {
    await this.view.start(signal);
  }

  /** Puts waiting for a status key to go. */
  get pending(): number {
    return [...this.holds.values()].filter((hold) => !hold.ready).length;
  }

  /** Puts not written yet: waiting for a status key to go, or being written. */
  get unsettled(): number {
    return this.holds.size + this.writing;
  }

  /** Task id → the put each hold will write (moves begun and not finished). */
  held(): ReadonlyMap<string, HeldPut> {
    return new Map([...this.holds].map(([taskId, hold]) => [taskId, hold.put]));
  }

  /**
   * Reads the status keys now (call it after the removals were written) and splits `puts` into those
   * that may be written at once and those that must wait for another worker to stop the task.
   */
  async partition(
    puts: readonly PlannedPut[],
  ): Promise<{ ready: PlannedPut[]; held: HeldPut[]; revision: number }> {
    if (puts.length === 0) return { ready: [], held: [], revision: 0 };
    const response = await this.source.read();
    const targets = new Map(puts.map((put) => [put.taskId, put.worker]));
    const reportedBy = new Map<string, string[]>();
    for (const key of response.keys) {
      const status = this.keys.parseStatus(key);
      if (!status || targets.get(status.taskId) === undefined || targets.get(status.taskId) === status.worker)
        continue;
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

  /**
   * Holds moves begun (`recorded` puts) until the old owner's status is gone at or after `revision` (the
   * removal's, or a later read's): only the old owner can hold it, as a hand-off wrote the task there only
   * once every other status was gone.
   */
  holdBegun(puts: readonly PlannedPut[], revision: number): void {
    const begun = puts.flatMap((put) => (put.recorded ? [{ ...put, from: [put.recorded.from] }] : []));
    this.hold(
      begun.map((put) => ({ ...put, blockers: [this.keys.status(put.from[0], put.taskId)] })),
      revision,
    );
  }

  /** Writes the ready holds whose target was not a live worker, if it is now (call on registration changes). */
  targetsChanged(): void {
    if (this.holds.size > 0) this.scheduleFlush();
  }

  /** Starts waiting; each put is written (fenced) as soon as its blockers are gone in a view at or after `readRevision`. */
  hold(puts: readonly HeldPut[], readRevision: number): void {
    const since = Date.now();
    const behind: Hold[] = [];
    for (const put of puts) {
      const hold: Hold = {
        put,
        remaining: new Set(put.blockers),
        readRevision,
        since,
        ready: false,
        frozen: false,
      };
      this.drop(put.taskId);
      this.holds.set(put.taskId, hold);
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
      if (!hold.ready && this.view.revision < readRevision) behind.push(hold);
    }
    // The view reaches the removal's revision only with a status event, which may never come (an old
    // owner that never reported, a claim refused, a lease gone before the removal): one read decides.
    if (behind.length > 0) this.confirm(behind);
    // Per-task lines are at debug; an info line sums the batches of a second.
    if (puts.length > 0) this.log.add("held", puts.length);
  }

  /**
   * Writes none of the current holds until `thaw()` (call it before a schedule's read), and resolves once
   * the puts being written have landed or failed, so the read sees them.
   */
  async freeze(): Promise<void> {
    this.deciding = true;
    for (const hold of this.holds.values()) hold.frozen = true;
    await Promise.all(this.inFlight);
  }

  /** Writes the frozen holds that became ready meanwhile (and each as it becomes ready). */
  thaw(): void {
    this.deciding = false;
    for (const hold of this.holds.values()) hold.frozen = false;
    this.scheduleFlush();
  }

  /** The move records `replan(decisions)` changes: a re-targeted move's record rewritten, a dropped one's deleted. */
  recordChanges(decisions: ReadonlyMap<string, PlannedPut | undefined>): WriteOp[] {
    const ops: WriteOp[] = [];
    for (const [taskId, put] of decisions) {
      const recorded = this.holds.get(taskId)?.put;
      if (!recorded?.recorded || (put && put.key === recorded.key && put.value === recorded.value)) continue;
      ops.push(retargetMove(this.keys, taskId, recorded.recorded.from, put));
    }
    return ops;
  }

  /**
   * An applied schedule's decision on moves begun before it (task id → where it now places the task, or
   * undefined: no longer placed): each such hold is written there instead (same blockers), or dropped.
   */
  replan(decisions: ReadonlyMap<string, PlannedPut | undefined>): void {
    for (const [taskId, put] of decisions) {
      const hold = this.holds.get(taskId);
      if (!hold) continue;
      if (!put) {
        this.options.logger.info({ task: taskId, to: hold.put.worker }, "hand-off dropped: no longer placed");
        this.drop(taskId);
      } else if (put.key !== hold.put.key || put.value !== hold.put.value) {
        hold.put = { ...hold.put, ...put };
      }
    }
  }

  /** Drops every hold (the leadership is over) and resolves once puts being written have landed or failed. */
  async close(): Promise<void> {
    this.closed.abort();
    clearTimeout(this.retryTimer);
    for (const taskId of [...this.holds.keys()]) this.drop(taskId);
    await Promise.all([...this.inFlight, ...this.reads]);
    this.log.flush();
    await this.view.close();
  }

  private drop(taskId: string): void {
    const hold = this.holds.get(taskId);
    if (!hold) return;
    this.holds.delete(taskId);
    for (const key of hold.remaining) this.forget(key, hold);
  }

  private forget(key: string, hold: Hold): void {
    const holds = this.holdsByStatusKey.get(key);
    holds?.delete(hold);
    if (holds?.size === 0) this.holdsByStatusKey.delete(key);
  }

  private recheck(holds: Set<Hold> | undefined): void {
    if (!holds) return;
    for (const hold of [...holds]) {
      for (const key of hold.remaining) {
        if (this.view.revision >= hold.readRevision && !this.view.entries.has(key)) this.gone(hold, key);
      }
    }
  }

  private gone(hold: Hold, key: string): void {
    hold.remaining.delete(key);
    this.forget(key, hold);
    if (hold.remaining.size === 0) this.release(hold);
  }

  private release(hold: Hold): void {
    if (hold.ready || this.holds.get(hold.put.taskId) !== hold) return;
    hold.ready = true;
    this.scheduleFlush();
  }

  /** Reads the blockers of `holds` at or after their removal; those absent are gone (retried until read). */
  private confirm(holds: Hold[]): void {
    const { signal } = this.closed;
    const backoff = exponentialBackoff({ initialMs: 100, maxMs: 2_000 });
    const reading = (async () => {
      for (;;) {
        const waiting = holds.filter((hold) => !hold.ready && this.holds.get(hold.put.taskId) === hold);
        if (waiting.length === 0 || signal.aborted) return;
        try {
          const read = await this.source.read([...new Set(waiting.flatMap((hold) => [...hold.remaining]))]);
          const present = new Set(read.keys);
          let early = false;
          for (const hold of waiting) {
            if (read.revision < hold.readRevision) early = true;
            else for (const key of [...hold.remaining]) if (!present.has(key)) this.gone(hold, key);
          }
          if (!early) return;
        } catch (error) {
          this.options.logger.debug({ err: error }, "hand-off: reading blockers failed; retrying");
        }
        await delay(backoff.next(), signal).catch(() => undefined);
      }
    })();
    this.reads.add(reading);
    void reading.finally(() => this.reads.delete(reading));
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // Puts released by one burst of status deletions share transactions.
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    if (this.closed.signal.aborted) return;
    const live = this.options.liveWorkers?.();
    const batch = [...this.holds.values()].filter(
      (hold) => hold.ready && !hold.frozen && (!live || live.has(hold.put.worker)),
    );
    if (batch.length === 0) return;
    for (const hold of batch) this.holds.delete(hold.put.taskId);
    const signal = this.closed.signal;
    this.writing += batch.length;
    let settled = false;
    const settle = () => {
      if (!settled) this.writing -= batch.length;
      settled = true;
    };
    // Completes moves begun: no pause compare (a task removed from its old owner must run somewhere).
    const write = this.writer
      .apply(
        batch.map(({ put }) => completeMove(this.keys, put)),
        { signal },
      )
      .then(() => {
        // Settled before the listeners hear of it, so a paced move may take the freed slot at once.
        settle();
        this.retryBackoff.reset();
        const now = Date.now();
        for (const { put, since } of batch) {
          this.log.add("written", 1, now - since);
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
        if (signal.aborted || this.writer.deposed) return;
        // Still moves begun: kept (unless a schedule re-decided them meanwhile) and written again.
        for (const hold of batch) {
          if (this.holds.has(hold.put.taskId)) continue;
          hold.frozen = this.deciding;
          this.holds.set(hold.put.taskId, hold);
        }
        this.options.onWriteFailed(error);
        clearTimeout(this.retryTimer);
        this.retryTimer = setTimeout(() => this.scheduleFlush(), this.retryBackoff.next());
      })
      .finally(() => this.inFlight.delete(write));
    this.inFlight.add(write);
  }
}
