import type { Logger } from "../node/index.js";
import type { RunningTask, TaskContext } from "./handler.js";

/**
 * One start of a task: its context, and once started, the handle to stop it. Whether it was asked to
 * stop is a flag; the context's abort signal is made only when someone reads it (a signal costs more
 * to make than the rest of a start; a handler that never reads it costs none), already aborted with
 * the reason when read after the abort, so the handler sees what an eager signal would show. The
 * child logger it carries is read the same way.
 */
export class Incarnation {
  running?: RunningTask;
  stopping = false;
  /** Set when the task ended without being asked to. */
  failure?: unknown;
  readonly ctx: TaskContext;
  private isAborted = false;
  private reason?: unknown;
  private controller?: AbortController;

  constructor(
    readonly fingerprint: string,
    readonly attempt: number,
    public startedAt: number,
    logger: { readonly taskLogger: Logger },
    worker: string,
  ) {
    const incarnation = this;
    // Accessors of the object itself (not of a prototype): a spread or `Object.keys` of it sees all three, as before.
    this.ctx = {
      get signal() {
        return incarnation.signal();
      },
      get logger() {
        return logger.taskLogger;
      },
      worker,
    };
  }

  /** True once asked to stop (`abort`). */
  get aborted(): boolean {
    return this.isAborted;
  }

  /** Asks the start to stop: the context's signal aborts with `reason` (the first reason given). */
  abort(reason: unknown): void {
    if (this.isAborted) return;
    this.isAborted = true;
    this.reason = reason;
    this.controller?.abort(reason);
  }

  /** The context's signal, made at its first read. */
  signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.isAborted) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }
}
