/**
 * The master's watch-fed view: one revision-consistent cache of the workers, the assignment and the
 * operator's controls (the ranges of `assignmentRanges`), fed by a compaction-safe watch of two key
 * ranges that hold them all (`viewWatchRanges`) and leave out the claims' keys (statuses, run locks,
 * worker slots: two thirds of a first start's writes), merged into one revision order.
 *
 * Invariant: the view at revision r equals etcd's range read of those ranges at r. It holds because the
 * view starts from a read at r0 and applies each revision's events after r0 in revision order, a
 * revision only once both watches have delivered past it (`RevisionMerge`), so no range runs ahead of
 * another; on compaction, a lost history or a replaced cluster it is replaced at once by a fresh read.
 *
 * Freshness: a consumer that must see every write up to revision f asks `atLeast(f)`, which resolves only
 * once the view has applied every event ≤ f; it never answers from older state. The wait ends for certain
 * only when f is the revision of a write into BOTH watched ranges (each watch then delivers it): a
 * schedule gets such an f by writing its fenced freshness mark (`readFresh`: `/R/view-mark` and
 * `/R/controls-mark` in one transaction), never from a read's header revision, which may be a write
 * outside the ranges. A view that does not get there in time makes the schedule read etcd.
 */
import type { Etcd3 } from "etcd3";
import { EschedulerError } from "../../errors.js";
import {
  type KeyLayout,
  type Logger,
  prefixRangeEnd,
  readRangesPaged,
  silentLogger,
} from "../../node/index.js";
import { RangesWatcher, type WatchedRange } from "../../watcher/index.js";
import type { WriteOp } from "../batches.js";
import {
  type AssignmentRead,
  assignmentRanges,
  parseAssignment,
  readAssignment,
} from "../read-assignment.js";
import { RangeState, type ViewEvent, type ViewKv } from "./range-state.js";

/** How long a schedule waits for the view to reach its mark before it reads etcd instead. */
export const VIEW_FRESHNESS_TIMEOUT_MS = 5_000;

/**
 * The two key ranges the view watches: from the controls' mark through the pins (cordons, draining
 * marks, the pause, holds, pins; also the few election, history and move keys in between), and from the
 * task keys to the end of the root (tasks, the freshness mark, registrations). Between them lie the run
 * locks, the slots and the statuses, which etcd then never sends the master's view.
 */
export function viewWatchRanges(keys: KeyLayout): WatchedRange[] {
  return [
    { key: Buffer.from(keys.controlsMark), range_end: prefixRangeEnd(keys.pinsPrefix) },
    { key: Buffer.from(keys.tasksPrefix), range_end: prefixRangeEnd(keys.prefix) },
  ];
}

interface Waiter {
  revision: number;
  resolve: () => void;
}

export interface MasterViewOptions {
  logger?: Logger;
}

export class MasterView {
  private readonly state: RangeState;
  private readonly watcher: RangesWatcher<ViewEvent>;
  private readonly waiters = new Set<Waiter>();
  private readonly logger: Logger;
  private resyncs = 0;

  constructor(
    client: Etcd3,
    private readonly keys: KeyLayout,
    options: MasterViewOptions = {},
  ) {
    this.logger = options.logger ?? silentLogger;
    this.state = new RangeState(assignmentRanges(keys));
    this.watcher = new RangesWatcher<ViewEvent>(client, viewWatchRanges(keys), {
      logger: this.logger,
      decode: (event) => this.state.decode(event),
      // A snapshot reads only the view's ranges (the keys between them are not held).
      snapshot: async () => {
        const read = await readRangesPaged(client, assignmentRanges(keys));
        return { revision: read.revision, kvs: read.ranges.flat() };
      },
      sink: {
        replaced: (snapshot) => {
          this.state.replace(snapshot);
          this.wake();
        },
        applied: (revision, events) => {
          this.state.applyDecoded(revision, events);
          this.wake();
        },
      },
    });
    this.watcher.on("resync", () => this.resyncs++);
    // The watcher retries by itself; its errors are logged there.
    this.watcher.on("error", () => undefined);
  }

  /** Reads its ranges once and starts watching; rejects (and may be called again) when the read fails. */
  async start(signal?: AbortSignal): Promise<void> {
    await this.watcher.start(signal);
  }

  /** Stops the watch; waiting consumers are left to their own deadline or signal. Idempotent. */
  close(): Promise<void> {
    return this.watcher.close();
  }

  /** The revision the view reflects: it has applied every event up to it. */
  get revision(): number {
    return this.state.revision;
  }

  /** How many times the view was replaced by a fresh read after its watch lost history. */
  get resyncCount(): number {
    return this.resyncs;
  }

  /** Keys the view holds. */
  get size(): number {
    return this.state.size;
  }

  /**
   * Resolves once the view has applied every event up to `revision`. Rejects with ERR_VIEW_STALE after
   * `timeoutMs`, or with the signal's reason: never resolves while the view is older.
   */
  atLeast(revision: number, options: { timeoutMs: number; signal?: AbortSignal }): Promise<void> {
    if (this.state.revision >= revision) return Promise.resolve();
    const { signal } = options;
    return new Promise<void>((resolve, reject) => {
      const finish = (error?: unknown) => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        this.waiters.delete(waiter);
        if (error === undefined) resolve();
        else reject(error);
      };
      const waiter: Waiter = { revision, resolve: () => finish() };
      const onAbort = () => finish(signal?.reason);
      const timer = setTimeout(
        () =>
          finish(
            new EschedulerError(
              "ERR_VIEW_STALE",
              `the master's view is at revision ${this.state.revision}, not yet at ${revision}, after ${options.timeoutMs} ms`,
            ),
          ),
        options.timeoutMs,
      );
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiters.add(waiter);
    });
  }

  /** The raw key-values of `assignmentRanges`, as a read of them at `revision` returns them. */
  ranges(): ViewKv[][] {
    return this.state.ranges();
  }

  /** Workers, assignment and controls as of `revision` (the schedule's read, from memory). */
  assignment(logger: Logger = this.logger): AssignmentRead {
    return parseAssignment(this.keys, this.state.ranges(), this.state.revision, logger);
  }

  private wake(): void {
    for (const waiter of this.waiters) if (this.state.revision >= waiter.revision) waiter.resolve();
  }
}

/** How a schedule reads through the view: its fenced mark, the wait for it, and the read it falls back to. */
export interface FreshReadSource {
  view: Pick<MasterView, "atLeast" | "assignment" | "revision">;
  /** Writes the leader's freshness mark (fenced, refused with ERR_PAUSED while paused); resolves with its revision. */
  mark: () => Promise<number>;
  /** A read from etcd, for when the view cannot be proven fresh in time. */
  read: () => Promise<AssignmentRead>;
  timeoutMs: number;
  logger: Logger;
}

/**
 * The schedule's read: at a revision at or after its own fenced mark, so it covers every write committed
 * before the schedule began (this leader's included), from memory when the view gets there in time,
 * from etcd when it does not. Never from a view older than the mark.
 */
export async function readFresh(source: FreshReadSource, signal?: AbortSignal): Promise<AssignmentRead> {
  let mark: number;
  try {
    mark = await source.mark();
  } catch (error) {
    if ((error as EschedulerError).code !== "ERR_PAUSED") throw error;
    // Paused: the leader writes nothing, not even its mark; it reads etcd (it may still finish hand-offs begun).
    return { ...(await source.read()), source: "etcd" };
  }
  try {
    await source.view.atLeast(mark, { timeoutMs: source.timeoutMs, signal });
  } catch (error) {
    if ((error as EschedulerError).code !== "ERR_VIEW_STALE") throw error;
    source.logger.warn(
      { mark, viewRevision: source.view.revision, timeoutMs: source.timeoutMs },
      "the master's view is behind its freshness mark; reading etcd instead",
    );
    return { ...(await source.read()), source: "etcd" };
  }
  return { ...source.view.assignment(), source: "view" };
}

/** The leader's read: its view, proven fresh by a fenced mark, else etcd (`readFresh`). */
export function leaderRead(
  view: MasterView,
  context: {
    client: Etcd3;
    keys: KeyLayout;
    name: string;
    writer: { commit(ops: readonly WriteOp[], options?: { unlessPaused?: boolean }): Promise<number> };
    logger: Logger;
    signal: AbortSignal;
    timeoutMs?: number;
  },
): () => Promise<AssignmentRead> {
  const { client, keys, logger } = context;
  const source: FreshReadSource = {
    view,
    mark: () =>
      context.writer.commit(
        [
          { type: "put", key: keys.viewMark, value: context.name },
          { type: "put", key: keys.controlsMark, value: context.name },
        ],
        { unlessPaused: true },
      ),
    read: () => readAssignment(client, keys, logger),
    timeoutMs: context.timeoutMs ?? VIEW_FRESHNESS_TIMEOUT_MS,
    logger,
  };
  return () => readFresh(source, context.signal);
}
