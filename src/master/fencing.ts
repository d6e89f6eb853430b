import { CompareResult, CompareTarget, type Etcd3, type ICompare } from "etcd3";
import { EschedulerError } from "../errors.js";
import { isEtcdBusy, type Logger, requestDeadline, silentLogger } from "../node/index.js";
import { delay, exponentialBackoff } from "../runtime/index.js";
import { intoBatches, toRequestOp, type WriteOp } from "./batches.js";

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

export interface FencedWriterOptions {
  /** Deadline of each transaction; default 15 s (REQUEST_TIMEOUT_MS). */
  requestTimeoutMs?: number;
  /** Transactions in flight at once. */
  concurrency?: number;
  logger?: Logger;
  /** Called once, when a transaction's fence fails. */
  onDeposed?: (error: EschedulerError) => void;
}

/**
 * Writes on behalf of one leadership: every transaction carries the fence. After the first failed
 * fence it sends nothing more (every later call throws ERR_DEPOSED at once).
 */
export class FencedWriter {
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
  async commit(ops: readonly WriteOp[], signal?: AbortSignal): Promise<number> {
    const backoff = exponentialBackoff({ initialMs: 100, maxMs: 2_000 });
    for (;;) {
      this.throwIfDeposed();
      while (this.inFlight >= this.limit) await new Promise<void>((wake) => this.waiting.push(wake));
      this.inFlight++;
      try {
        const response = await this.client.kv.txn(
          { compare: this.fence, success: ops.map(toRequestOp), failure: [] },
          requestDeadline(this.options.requestTimeoutMs),
        );
        if (!response.succeeded) throw this.markDeposed(ops.length);
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
  async apply(ops: readonly WriteOp[], signal?: AbortSignal): Promise<number> {
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
          if (failure === undefined) highest = Math.max(highest, await this.commit(batches[index], signal));
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

/** How many leading batches must commit before batch `index`: those holding a higher priority than its lowest. */
function mustFollow(batches: WriteOp[][], index: number): number {
  const lowest = batches[index].at(-1)?.priority;
  if (lowest === undefined) return 0;
  let count = index;
  // Batches are sorted by priority, so their highest priorities never increase.
  while (count > 0 && (batches[count - 1][0].priority ?? lowest) <= lowest) count--;
  return count;
}
