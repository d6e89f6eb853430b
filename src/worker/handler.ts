import { EschedulerError } from "../errors.js";
import { importDefaultExport, type Logger, type Task } from "../node/index.js";

/** What a handler receives with each task. */
export interface TaskContext {
  /** Aborted when the task must stop (removed, changed, worker stopping or fenced). */
  signal: AbortSignal;
  /** Child logger carrying the worker and task. */
  logger: Logger;
  /** Name of the worker running the task. */
  worker: string;
}

/** A handler that starts a task (resolving once it is up) and stops it on request. */
export interface StartStopHandler {
  start(task: Task, ctx: TaskContext): unknown;
  stop(task: Task, ctx: TaskContext): unknown;
}

/** A handler that runs a task until `ctx.signal` aborts; returning or throwing earlier is a failure. */
export type RunHandler = (task: Task, ctx: TaskContext) => unknown;

/** The default export of a handler module. */
export type TaskHandler = StartStopHandler | RunHandler;

/** A started task as the task runner sees it, whatever the handler's shape. */
export interface RunningTask {
  /**
   * Settles (with the reason, if any) when the task ends without being asked to stop; absent when it
   * cannot (a start/stop handler's task runs until stopped).
   */
  readonly ended?: Promise<unknown>;
  /** Stops the task; call after aborting `ctx.signal`. Resolves once it has stopped. */
  stop(): Promise<void>;
}

/** One interface over both handler shapes. */
export interface TaskLauncher {
  /** Resolves once the task is up; rejects when it could not start. */
  launch(task: Task, ctx: TaskContext): Promise<RunningTask>;
}

/** Normalises a handler of either shape; throws ERR_MODULE (naming `source`) on anything else. */
export function taskLauncher(handler: unknown, source = "handler"): TaskLauncher {
  if (typeof handler === "function") {
    const run = handler as RunHandler;
    return {
      async launch(task, ctx) {
        // Invoked inside a promise chain so a synchronous throw counts as the task ending.
        const running = Promise.resolve().then(() => run(task, ctx));
        return {
          ended: running.then(
            () => new Error("run() returned before the task was stopped"),
            (error: unknown) => error,
          ),
          stop: async () => {
            await running.catch((error: unknown) => {
              if (!ctx.signal.aborted || error !== ctx.signal.reason) {
                ctx.logger.warn({ err: error }, "task run() rejected while stopping");
              }
            });
          },
        };
      },
    };
  }
  if (isStartStopHandler(handler)) {
    return {
      async launch(task, ctx) {
        await handler.start(task, ctx);
        return new StartedTask(handler, task, ctx);
      },
    };
  }
  throw new EschedulerError(
    "ERR_MODULE",
    `${source} must default-export a function run(task, ctx) or an object with start(task, ctx) and stop(task, ctx)`,
  );
}

/** Loads a handler module by path (ESM or CommonJS default export), or accepts a handler value as is. */
export async function loadHandler(pathOrHandler: string | TaskHandler): Promise<TaskLauncher> {
  if (typeof pathOrHandler !== "string") return taskLauncher(pathOrHandler);
  const exported = await importDefaultExport(pathOrHandler, "handler");
  return taskLauncher(exported, `handler module ${JSON.stringify(pathOrHandler)}`);
}

/**
 * A start/stop handler's started task: no `ended` (it runs until stopped; a promise shared by every
 * start that never settles would keep each start's listener forever), and no closure kept per task.
 */
class StartedTask implements RunningTask {
  constructor(
    private readonly handler: StartStopHandler,
    private readonly task: Task,
    private readonly ctx: TaskContext,
  ) {}

  async stop(): Promise<void> {
    await this.handler.stop(this.task, this.ctx);
  }
}

function isStartStopHandler(value: unknown): value is StartStopHandler {
  const candidate = value as Partial<StartStopHandler> | null;
  return (
    typeof candidate === "object" &&
    candidate !== null &&
    typeof candidate.start === "function" &&
    typeof candidate.stop === "function"
  );
}
