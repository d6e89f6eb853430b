import { EschedulerError, isEschedulerError } from "../errors.js";
import type { KeyLayout, Logger } from "../node/index.js";
import type { WriteOp } from "./batches.js";
import { beginMove } from "./begun-moves.js";
import type { LeaderWriter } from "./fencing.js";
import type { HandoffGate, PlannedPut } from "./handoff.js";

/** `--max-moving`: a whole number of tasks, or a percentage (`"10%"`) of the tasks a schedule places. */
export type MaxMoving = number | string;

/** Why `setting` is not a valid `--max-moving`, or undefined when it is. */
export function maxMovingProblem(setting: MaxMoving): string | undefined {
  const text = String(setting).trim();
  const percent = /^(\d+(?:\.\d+)?)%$/.exec(text);
  if (percent ? Number(percent[1]) > 0 && Number(percent[1]) <= 100 : /^\d+$/.test(text) && Number(text) >= 1)
    return undefined;
  return "must be a whole number of tasks (at least 1) or a percentage such as 10%";
}

/** Throws ERR_CONFIG unless `setting` is a whole number ≥ 1 or a percentage in (0, 100]. */
export function parseMaxMoving(setting: MaxMoving): { count: number } | { percent: number } {
  const problem = maxMovingProblem(setting);
  if (problem)
    throw new EschedulerError("ERR_CONFIG", `invalid max-moving ${JSON.stringify(setting)}: ${problem}`);
  const text = String(setting).trim();
  return text.endsWith("%") ? { percent: Number(text.slice(0, -1)) } : { count: Number(text) };
}

/** How many tasks may be between owners at once for a schedule of `tasks` tasks (at least 1). */
export function maxMovingLimit(setting: MaxMoving, tasks: number): number {
  const parsed = parseMaxMoving(setting);
  if ("count" in parsed) return parsed.count;
  return Math.max(1, Math.floor((tasks * parsed.percent) / 100));
}

/** A task taken from one live worker and given to another. */
export interface Move {
  /** The worker it runs on now. */
  from: string;
  removal: WriteOp;
  put: PlannedPut;
}

/**
 * Splits a schedule's writes into moves between live workers (paced) and everything else: removals of
 * gone workers' or no longer generated tasks, new placements, updates (never paced).
 */
export function splitMoves(
  keys: KeyLayout,
  changes: { removals: readonly WriteOp[]; puts: readonly PlannedPut[] },
  liveWorkers: ReadonlySet<string>,
): { moves: Move[]; removals: WriteOp[]; puts: PlannedPut[] } {
  const removedFromLive = new Map<string, { from: string; removal: WriteOp }>();
  for (const removal of changes.removals) {
    const parts = keys.parseTask(removal.key);
    if (parts && liveWorkers.has(parts.worker))
      removedFromLive.set(parts.taskId, { from: parts.worker, removal });
  }
  const moves: Move[] = [];
  const puts: PlannedPut[] = [];
  for (const put of changes.puts) {
    const removed = removedFromLive.get(put.taskId);
    if (removed) {
      moves.push({ ...removed, put });
      removedFromLive.delete(put.taskId);
    } else {
      puts.push(put);
    }
  }
  const moving = new Set(moves.map((move) => move.removal));
  return { moves, removals: changes.removals.filter((removal) => !moving.has(removal)), puts };
}

/**
 * Paced moves (`--max-moving`): at most `limit` tasks are between owners at once — removed from their
 * old worker, not yet written to the new one. A move starts by removing the task from its old worker
 * and ends when the hand-off gate writes it to the new one; each finished hand-off lets the next queued
 * moves start, so a large rebalance completes without another schedule (or generator call). Starting a
 * move is refused by etcd while schedules are paused (the queue is then dropped); a move begun is the
 * gate's and always finishes.
 */
export class MovePacer {
  private queue: Move[] = [];
  private limit = 1;
  private starting = 0;
  private filling?: Promise<void>;
  private refillAgain = false;
  private cancelled = new AbortController();

  constructor(
    private readonly keys: KeyLayout,
    private readonly gate: HandoffGate,
    private readonly writer: LeaderWriter,
    private readonly options: { logger: Logger; onFailed: (error: unknown) => void },
  ) {}

  /** Moves waiting for a free slot. */
  get queued(): number {
    return this.queue.length;
  }

  /** Replaces the queue with `moves` and starts as many as `limit` allows; resolves once those started. */
  async pace(moves: readonly Move[], limit: number, signal: AbortSignal): Promise<void> {
    this.queue = [...moves];
    this.limit = limit;
    if (moves.length > 0) {
      this.options.logger.info({ moves: moves.length, maxMoving: limit }, "pacing moves");
    }
    await this.fill(signal);
  }

  /** Starts queued moves into free slots (call when a hand-off finished). */
  refill(signal: AbortSignal): void {
    if (this.queue.length === 0) return;
    this.fill(signal).catch((error: unknown) => {
      if (signal.aborted || isPaused(error)) return;
      this.options.onFailed(error);
    });
  }

  /** Drops the queue and resolves once moves being started have been handed to the gate. */
  async cancelPending(): Promise<void> {
    this.queue = [];
    this.cancelled.abort();
    this.cancelled = new AbortController();
    await this.filling?.catch(() => undefined);
  }

  private fill(signal: AbortSignal): Promise<void> {
    if (this.filling) {
      this.refillAgain = true;
      return this.filling;
    }
    this.filling = (async () => {
      const cancelled = this.cancelled.signal;
      const stop = AbortSignal.any([signal, cancelled]);
      let started = true;
      try {
        while ((started || this.refillAgain) && this.queue.length > 0 && !stop.aborted) {
          this.refillAgain = false;
          started = await this.startFree(stop);
        }
      } catch (error) {
        // The queue was dropped on purpose (a newer schedule replans it): nothing failed, for any
        // refill that joined this fill either (each finished hand-off asks for one).
        if (cancelled.aborted && !signal.aborted) return;
        if (isPaused(error)) {
          this.options.logger.info(
            { dropped: this.queue.length },
            "paced moves stopped: schedules are paused",
          );
          this.queue = [];
        }
        throw error;
      }
    })().finally(() => {
      this.filling = undefined;
    });
    return this.filling;
  }

  /** Starts as many queued moves as there are free slots; false when none was free. */
  private async startFree(signal: AbortSignal): Promise<boolean> {
    const free = this.limit - this.gate.unsettled - this.starting;
    if (free <= 0 || this.queue.length === 0) return false;
    const batch = this.queue.splice(0, free);
    const byRemoval = new Map(batch.map((move) => [move.removal.key, move]));
    let notBegun = batch.length;
    this.starting += notBegun;
    try {
      // Each removal carries its move record: a later leader finishes the move if this one dies.
      await this.writer.apply(
        batch.map((move) => beginMove(this.keys, move.removal, move.from, move.put)),
        {
          signal,
          unlessPaused: true,
          // Each committed transaction begins its moves: the gate holds them at once, whatever follows.
          onCommitted: (ops, revision) => {
            const begun = ops.flatMap((op) => byRemoval.get(op.key) ?? []);
            notBegun -= begun.length;
            this.starting -= begun.length;
            // Waits for the old owner's status at or after the removal: no read of all statuses.
            this.gate.holdBegun(
              begun.map(({ from, put }) => ({ ...put, recorded: { from } })),
              revision,
            );
          },
        },
      );
    } finally {
      this.starting -= notBegun;
    }
    return true;
  }
}

function isPaused(error: unknown): boolean {
  return isEschedulerError(error) && error.code === "ERR_PAUSED";
}
