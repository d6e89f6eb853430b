/**
 * Runs a job one at a time: asked while it runs, it runs once more afterwards, however often it was
 * asked meanwhile. No request is lost, and none starts a run of its own.
 */
export class SerialJob {
  private current?: Promise<void>;
  private again = false;
  /** Set from the moment a loop starts (synchronously), so a job asking for itself as it starts starts no second loop. */
  private looping = false;

  constructor(
    private readonly job: () => Promise<void>,
    private readonly hooks: {
      /** A run that threw (without it, the error rejects `idle()`'s callers and is unhandled). */
      onError?: (error: unknown) => void;
      /** After the last run, once nothing is due. */
      onIdle?: () => void;
    } = {},
  ) {}

  /** Runs the job now, or once more after the current run. */
  request(): void {
    this.again = true;
    if (this.looping) return;
    this.looping = true;
    this.current = this.loop();
  }

  /** True while a run is going (or due). */
  get running(): boolean {
    return this.looping;
  }

  /** True when asked again during the current run: what it finds is about to be superseded. */
  get requestedAgain(): boolean {
    return this.again;
  }

  /** Resolves once no run is going or due. */
  async idle(): Promise<void> {
    while (this.current) await this.current;
  }

  private async loop(): Promise<void> {
    try {
      while (this.again) {
        this.again = false;
        try {
          await this.job();
        } catch (error) {
          if (!this.hooks.onError) throw error;
          this.hooks.onError(error);
        }
      }
    } finally {
      this.looping = false;
      this.current = undefined;
    }
    this.hooks.onIdle?.();
  }
}
