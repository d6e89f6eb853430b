import type { Logger } from "../node/index.js";
import type { RunningTask, TaskContext } from "./handler.js";

/** Where a context finds its start: a key of no enumerable property, so no spread copies it. */
const START = Symbol("start");

type StartContext = TaskContext & { [START]: Incarnation };

/**
 * A field of the context read from its start: an own enumerable property (a spread or `Object.keys` of
 * the context sees signal, logger and worker, as with a plain object). A handler may assign it
 * (`TaskContext` lets it, e.g. `ctx.logger = ctx.logger.child(…)`): the value then replaces the
 * accessor on that context only, a plain property from then on.
 */
function accessor(field: "signal" | "logger", read: (start: Incarnation) => unknown): PropertyDescriptor {
  return {
    get(this: StartContext) {
      return read(this[START]);
    },
    set(this: StartContext, value: unknown) {
      Object.defineProperty(this, field, { value, writable: true, enumerable: true, configurable: true });
    },
    enumerable: true,
    configurable: true,
  };
}

/** One pair of accessors for every context, so contexts share their shape. */
const ACCESSORS: PropertyDescriptorMap = {
  signal: accessor("signal", (start) => start.signal()),
  logger: accessor("logger", (start) => start.logger()),
};

function startContext(start: Incarnation, worker: string): TaskContext {
  const ctx = Object.defineProperties({}, ACCESSORS) as StartContext;
  Object.defineProperty(ctx, START, { value: start });
  ctx.worker = worker;
  return ctx;
}

/**
 * One start of a task: its context, and once started, the handle to stop it. Whether it was asked to
 * stop is a flag; the context's abort signal is made only when someone reads it (a signal costs more
 * to make than the rest of a start; a handler that never reads it costs none), already aborted with
 * the reason when read after the abort, so the handler sees what an eager signal would show. The
 * reason too is made only when the signal is read (most stops are of handlers that never read it,
 * and an error's stack costs more than the rest of a stop). The child logger it carries is read the
 * same way.
 */
export class Incarnation {
  running?: RunningTask;
  stopping = false;
  /** Set when the task ended without being asked to. */
  failure?: unknown;
  readonly ctx: TaskContext;
  private isAborted = false;
  private reason?: () => unknown;
  private controller?: AbortController;

  constructor(
    readonly fingerprint: string,
    readonly attempt: number,
    public startedAt: number,
    private readonly logs: { readonly taskLogger: Logger },
    worker: string,
  ) {
    this.ctx = startContext(this, worker);
  }

  /** True once asked to stop (`abort`). */
  get aborted(): boolean {
    return this.isAborted;
  }

  /** Asks the start to stop: the context's signal aborts with the reason `reason` makes (the first reason given). */
  abort(reason: () => unknown): void {
    if (this.isAborted) return;
    this.isAborted = true;
    this.reason = reason;
    this.controller?.abort(reason());
  }

  /** The task's child logger (made by its runner at the first read). */
  logger(): Logger {
    return this.logs.taskLogger;
  }

  /** The context's signal, made at its first read. */
  signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.isAborted) this.controller.abort(this.reason?.());
    }
    return this.controller.signal;
  }
}
