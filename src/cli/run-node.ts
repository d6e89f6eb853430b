/** The life of a long-running node process (master or worker): serve HTTP, start, run until a signal, stop gracefully. */
import type { Logger } from "../node/index.js";
import { EXIT_FAILURE, EXIT_OK, oneLine } from "./errors.js";
import { type HttpEndpoint, type HttpHandlers, serveHttp } from "./http.js";

export interface RunnableNode {
  start(): Promise<void>;
  /** Graceful and idempotent: a master resigns, a worker stops its tasks and revokes its lease. */
  stop(): Promise<void>;
}

export interface RunNodeOptions {
  node: RunnableNode;
  logger: Logger;
  /** `--http host:port`, with what to serve there. */
  http?: { address: string; handlers: HttpHandlers };
  /** Rejects when the node fails beyond recovery while running (the process then exits 1). */
  fatal?: Promise<never>;
}

/**
 * Starts the node and runs it until SIGTERM or SIGINT, then stops it and resolves with the exit code
 * (0 after a clean stop). A second signal while stopping exits at once with 1.
 */
export async function runNode(options: RunNodeOptions): Promise<number> {
  const { node, logger } = options;
  let endpoint: HttpEndpoint | undefined;
  let onSignal: ((signal: NodeJS.Signals) => void) | undefined;
  const signalled = new Promise<NodeJS.Signals>((resolve) => {
    onSignal = (signal) => {
      if (stopRequested) {
        logger.warn({ signal }, "second signal while stopping: exiting now");
        process.exit(EXIT_FAILURE);
      }
      stopRequested = true;
      resolve(signal);
    };
  });
  let stopRequested = false;
  process.on("SIGTERM", onSignal!);
  process.on("SIGINT", onSignal!);
  try {
    // HTTP first: liveness answers while the node waits for a slot or the barrier.
    if (options.http) endpoint = await serveHttp(options.http.address, options.http.handlers, logger);
    const outcome = await Promise.race([
      node.start().then(() => signalled),
      signalled,
      options.fatal ?? new Promise<never>(() => {}),
    ]);
    logger.info({ signal: outcome }, "stopping");
    await node.stop();
    logger.info("stopped");
    return EXIT_OK;
  } catch (error) {
    await node.stop().catch((stopError: unknown) => logger.warn({ err: stopError }, "stop failed"));
    if (stopRequested) {
      // Stopped while starting: the start's rejection is the expected consequence.
      logger.info({ reason: oneLine(error) }, "stopped before it was fully started");
      return EXIT_OK;
    }
    throw error;
  } finally {
    process.off("SIGTERM", onSignal!);
    process.off("SIGINT", onSignal!);
    await endpoint?.close();
  }
}
