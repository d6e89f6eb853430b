import { CompareResult, CompareTarget, type Etcd3, type ICompare, type IRequestOp } from "etcd3";
import { EschedulerError } from "../errors.js";
import {
  isEtcdBusy,
  type Logger,
  pausedRecordSchema,
  readRecord,
  repairPausedRecord,
  requestDeadline,
  silentLogger,
} from "../node/index.js";
import { delay, exponentialBackoff } from "../runtime/index.js";
import { pausedError } from "./controls.js";
import { intoBatches, toRequestOps, type WriteOp } from "./batches.js";

/** The compare every leader write carries: this master's election key still exists with its creation revision. */
export function leaderFence(electionKey: string, createRevision: number | string): ICompare[] {
  return [
    {
      key: Buffer.from(electionKey),
      target: CompareTarget.Create,
      result: CompareResult.Equal,
      create_revision: String(createRevision),
    },
  ];
}

/** The compare a schedule's writes add: `/R/paused` does not exist. */
export function unpausedCompare(pausedKey: string): ICompare {
  return {
    key: Buffer.from(pausedKey),
    target: CompareTarget.Version,
    result: CompareResult.Equal,
    version: "0",
  };
}

/** How one write is sent. */
export interface WriteOptions {
  /** Stops sending (and waiting) once aborted. */
  signal?: AbortSignal;
  /**
   * Refused by etcd (ERR_PAUSED, nothing written) while `/R/paused` exists: every write that adds,
   * removes or moves a task carries it, except the completion of a move already begun.
   */
  unlessPaused?: boolean;
  /** Called after each transaction commits (`apply`), so a caller knows exactly which ops landed. */
  onCommitted?: (ops: readonly WriteOp[], revision: number) => void;
}

/** What gate, pacer and schedule need of a writer (a seam for tests without etcd). */
export interface LeaderWriter {
  readonly deposed: boolean;
  commit(ops: readonly WriteOp[], options?: WriteOptions): Promise<number>;
  apply(ops: readonly WriteOp[], options?: WriteOptions): Promise<number>;
}

export interface FencedWriterOptions {
  /** Deadline of each transaction; default 15 s (REQUEST_TIMEOUT_MS). */
  requestTimeoutMs?: number;
  /** Transactions in flight at once. */
  concurrency?: number;
  logger?: Logger;
  /** Called once, when a transaction's fence fails. */
  onDeposed?: (error: EschedulerError) => void;
  /** `/R/paused`: the key `unlessPaused` writes compare. */
  pausedKey?: string;
}

/**
 * Writes on behalf of one leadership: every transaction carries the fence. After the first failed
 * fence it sends nothing more (every later call throws ERR_DEPOSED at once). A write sent `unlessPaused`
 * also compares that schedules are not paused, so a pause stops a schedule where it writes.
 */
export class FencedWriter implements LeaderWriter {
  private deposedError?: EschedulerError;
  private readonly concurrency: number;
  /** Transactions allowed in flight now: `concurrency`, halved each time etcd pushes back, regained one per success. */
  private limit: number;
  private inFlight = 0;
  private waiting: Array<() => void> = [];
  private readonly logger: Logger;

  constructor(
    private readonly client: Etcd3,
    readonly fence: ICompare[],
    private readonly options: FencedWriterOptions = {},
  ) {
    this.concurrency = options.concurrency ?? 4;
    this.limit = this.concurrency;
    this.logger = options.logger ?? silentLogger;
  }

  get deposed(): boolean {
    return this.deposedError !== undefined;
  }

  /**
   * Commits `ops` as one fenced transaction; resolves with its revision. When etcd answers "too many
   * requests" it waits (backing off) and sends it again, with fewer transactions in flight meanwhile:
   * a busy etcd slows a schedule down, never abandons it.
   */
  async commit(ops: readonly WriteOp[], options: WriteOptions = {}): Promise<number> {
    const { signal } = options;
    const paused = options.unlessPaused ? this.pausedKey() : undefined;
    const backoff = exponentialBackoff({ initialMs: 100, maxMs: 2_000 });
    for (;;) {
      this.throwIfDeposed();
      while (this.inFlight >= this.limit) await new Promise<void>((wake) => this.waiting.push(wake));
      this.inFlight++;
      try {
        const response = await this.client.kv.txn(
          {
            compare: paused ? [...this.fence, unpausedCompare(paused)] : this.fence,
            success: ops.flatMap(toRequestOps),
            // Tells a pause from a lost leadership: the fence's key and the pause key as they are now.
            failure: paused ? [rangeOf(this.fence[0]?.key), rangeOf(paused)] : [],
          },
          requestDeadline(this.options.requestTimeoutMs),
        );
        if (!response.succeeded) {
          const pause = paused ? this.pausedRefusal(response.responses) : undefined;
          if (pause) throw pause;
          throw this.markDeposed(ops.length);
        }
        this.limit = Math.min(this.concurrency, this.limit + 1);
        return Number(response.header.revision);
      } catch (error) {
        if (!isEtcdBusy(error)) throw error;
        const wait = backoff.next();
        if (this.limit > 1) {
          this.limit = Math.max(1, Math.floor(this.limit / 2));
          this.logger.warn(
            { err: error, inFlight: this.limit, retryInMs: wait },
            "etcd is busy; writing slower",
          );
        }
        await delay(wait, signal);
      } finally {
        this.inFlight--;
        for (const wake of this.waiting.splice(0)) wake();
      }
    }
  }

  /**
   * Commits `ops` as transactions within etcd's limits, `concurrency` at a time, in order: a transaction
   * starts only once every transaction holding a strictly higher priority has committed, so important
   * tasks land first while equal priorities go in parallel. Resolves with the highest revision written
   * (0 when there was nothing to write). On the first failure, or when `signal` aborts, it starts no
   * more transactions, waits for those in flight, then throws.
   */
  async apply(ops: readonly WriteOp[], options: WriteOptions = {}): Promise<number> {
    const { signal } = options;
    const batches = intoBatches(ops);
    const settled: Array<() => void> = [];
    const committed = batches.map(() => new Promise<void>((resolve) => settled.push(resolve)));
    let next = 0;
    let highest = 0;
    let failure: unknown;
    const lane = async () => {
      while (failure === undefined && next < batches.length) {
        const index = next++;
        try {
          await Promise.all(committed.slice(0, mustFollow(batches, index)));
          if (failure === undefined && signal?.aborted) failure = signal.reason;
          if (failure === undefined) {
            const revision = await this.commit(batches[index], options);
            highest = Math.max(highest, revision);
            options.onCommitted?.(batches[index], revision);
          }
        } catch (error) {
          failure ??= error;
        } finally {
          settled[index]();
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, batches.length) }, lane));
    if (failure !== undefined) throw failure;
    return highest;
  }

  private pausedKey(): string {
    if (!this.options.pausedKey) throw new Error("FencedWriter: unlessPaused needs the pausedKey option");
    return this.options.pausedKey;
  }

  /** ERR_PAUSED when the failed compare was the pause (the fence still holds), else undefined. */
  private pausedRefusal(
    responses: ReadonlyArray<{ response_range?: { kvs: Array<{ create_revision: string; value: Buffer }> } }>,
  ): EschedulerError | undefined {
    const [election, paused] = responses.map((response) => response.response_range?.kvs[0]);
    const fenced = election?.create_revision === String(this.fence[0]?.create_revision);
    if (!fenced || !paused) return undefined;
    const key = this.options.pausedKey ?? "";
    const record = readRecord(pausedRecordSchema, key, paused.value, this.logger, {
      repair: repairPausedRecord,
    });
    return pausedError(record ?? { at: "" });
  }

  private throwIfDeposed(): void {
    if (this.deposedError) throw this.deposedError;
  }

  private markDeposed(opCount: number): EschedulerError {
    if (!this.deposedError) {
      const key = this.fence[0]?.key?.toString();
      this.deposedError = new EschedulerError(
        "ERR_DEPOSED",
        `deposed: election key ${key} no longer exists at revision ${this.fence[0]?.create_revision}; writing nothing more`,
      );
      this.logger.warn({ electionKey: key, droppedOps: opCount }, "fence failed: this master was deposed");
      this.options.onDeposed?.(this.deposedError);
    }
    return this.deposedError;
  }
}

function rangeOf(key: Buffer | string | undefined): IRequestOp {
  return { request_range: { key: Buffer.from(key ?? "") } };
}

/** How many leading batches must commit before batch `index`: those holding a higher priority than its lowest. */
function mustFollow(batches: WriteOp[][], index: number): number {
  const lowest = batches[index].at(-1)?.priority;
  if (lowest === undefined) return 0;
  let count = index;
  // Batches are sorted by priority, so their highest priorities never increase.
  while (count > 0 && (batches[count - 1][0].priority ?? lowest) <= lowest) count--;
  return count;
}
