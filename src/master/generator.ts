import { EschedulerError } from "../errors.js";
import { importDefaultExport, type Logger, type Task } from "../node/index.js";
import { unlessAborted } from "../runtime/index.js";
import { type ValidatedTasks, validatedTasks } from "./validation.js";

export interface GeneratorContext {
  /** Aborted when the schedule is abandoned (timeout, deposed, stopped). */
  signal: AbortSignal;
  /** Names of the live workers when the schedule started. */
  workers: string[];
  logger: Logger;
}

/** The user's function that returns the complete list of tasks that should run. */
export type Generator = (ctx: GeneratorContext) => Promise<Task[]> | Task[];

/** Returns the generator itself, or the default export of the module at that path (ERR_MODULE if it is not a function). */
export async function loadGenerator(generator: Generator | string): Promise<Generator> {
  if (typeof generator === "function") return generator;
  const exported = await importDefaultExport(generator, "generator");
  if (typeof exported !== "function") {
    throw new EschedulerError(
      "ERR_MODULE",
      `generator module ${JSON.stringify(generator)} must default-export a function, not ${typeof exported}`,
    );
  }
  return exported as Generator;
}

/**
 * Calls the generator, gives up after `timeoutMs` even when it ignores its signal, and validates the result
 * (the tasks, and the index of each id).
 * Throws ERR_GENERATOR (threw, timed out, not an array) or ERR_BAD_TASK; rethrows the caller's abort reason as is.
 */
export async function generateTasks(
  generator: Generator,
  options: { workers: string[]; logger: Logger; signal: AbortSignal; timeoutMs: number },
): Promise<ValidatedTasks> {
  const timeout = new AbortController();
  const timer = setTimeout(
    () =>
      timeout.abort(new EschedulerError("ERR_GENERATOR", `generator timed out after ${options.timeoutMs}ms`)),
    options.timeoutMs,
  );
  const signal = AbortSignal.any([options.signal, timeout.signal]);
  let output: unknown;
  try {
    signal.throwIfAborted();
    // A generator that ignores its signal is abandoned on time all the same.
    output = await unlessAborted(
      Promise.resolve().then(() => generator({ signal, workers: options.workers, logger: options.logger })),
      signal,
    );
  } catch (error) {
    if (signal.aborted && error === signal.reason) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    throw new EschedulerError("ERR_GENERATOR", `generator threw: ${reason}`, { cause: error });
  } finally {
    clearTimeout(timer);
  }
  return validatedTasks(output);
}
