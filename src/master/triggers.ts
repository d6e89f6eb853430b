import { SerialJob } from "../runtime/index.js";

interface Waiter<R> {
  resolve(result: R | undefined): void;
  reject(error: unknown): void;
}

interface PendingRun<R> {
  reasons: Set<string>;
  waiters: Waiter<R>[];
}

/**
 * Runs one job at a time. Requests that arrive while a run is going coalesce into exactly one
 * further run after it, so none is dropped and none is run twice.
 */
export class CoalescingRunner<R> {
  private pending?: PendingRun<R>;
  private readonly runs = new SerialJob(() => this.drain());
  private paused: boolean;
  private closed = false;

  constructor(
    private readonly run: (reasons: string[]) => Promise<R | undefined>,
    options: { paused?: boolean } = {},
  ) {
    this.paused = options.paused ?? false;
  }

  /** Asks for a run; fire and forget (a failed run is the job's to report). */
  trigger(reason: string): void {
    if (this.closed) return;
    this.enqueue(reason);
    this.kick();
  }

  /** Asks for a run and resolves with the result of the run that starts after this call (undefined once closed). */
  request(reason: string): Promise<R | undefined> {
    if (this.closed) return Promise.resolve(undefined);
    const result = new Promise<R | undefined>((resolve, reject) =>
      this.enqueue(reason).waiters.push({ resolve, reject }),
    );
    this.kick();
    return result;
  }

  /**
   * Holds further runs until `resume()` (triggers coalesce meanwhile; a running one finishes). With a
   * `refusal`, requests already waiting for a run are rejected with it instead of waiting.
   */
  pause(refusal?: unknown): void {
    this.paused = true;
    if (refusal === undefined || !this.pending) return;
    for (const waiter of this.pending.waiters.splice(0)) waiter.reject(refusal);
  }

  /** Lets queued requests run (a runner created paused holds them until now). */
  resume(): void {
    this.paused = false;
    this.kick();
  }

  get running(): boolean {
    return this.runs.running;
  }

  /** Refuses new requests, answers waiting ones with undefined, and resolves once the current run is over. */
  async close(): Promise<void> {
    this.closed = true;
    const pending = this.pending;
    this.pending = undefined;
    for (const waiter of pending?.waiters ?? []) waiter.resolve(undefined);
    await this.runs.idle();
  }

  private enqueue(reason: string): PendingRun<R> {
    this.pending ??= { reasons: new Set(), waiters: [] };
    this.pending.reasons.add(reason);
    return this.pending;
  }

  private kick(): void {
    if (!this.paused && !this.closed && this.pending) this.runs.request();
  }

  private async drain(): Promise<void> {
    while (this.pending && !this.paused && !this.closed) {
      const batch = this.pending;
      this.pending = undefined;
      try {
        const result = await this.run([...batch.reasons]);
        for (const waiter of batch.waiters) waiter.resolve(result);
      } catch (error) {
        for (const waiter of batch.waiters) waiter.reject(error);
      }
    }
  }
}

/**
 * Calls `action` once `waitMs` have passed without another `poke()` (trailing edge), but no later than
 * `maxWaitMs` after the first poke it has not acted on: pokes that keep coming (a worker that crash-loops,
 * a script rewriting a registration) cannot put the action off for ever.
 */
export class Debouncer {
  private quiet?: NodeJS.Timeout;
  private deadline?: NodeJS.Timeout;

  constructor(
    private readonly waitMs: number,
    private readonly action: () => void,
    private readonly maxWaitMs = 2 * waitMs,
  ) {}

  poke(): void {
    clearTimeout(this.quiet);
    this.quiet = setTimeout(() => this.act(), this.waitMs);
    this.deadline ??= setTimeout(() => this.act(), Math.max(this.waitMs, this.maxWaitMs));
  }

  cancel(): void {
    clearTimeout(this.quiet);
    clearTimeout(this.deadline);
    this.quiet = this.deadline = undefined;
  }

  private act(): void {
    this.cancel();
    this.action();
  }
}
