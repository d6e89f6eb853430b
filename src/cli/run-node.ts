/** The life of a long-running node process (master or worker): serve HTTP, start, run until a signal, stop gracefully. */
import type { Etcd3 } from "etcd3";
import type { z } from "zod";
import { createLogger, defaultNodeName, type Logger } from "../node/index.js";
import { parseConfig, type SharedConfig } from "./config.js";
import { connectNodeEtcd } from "./connect.js";
import { EXIT_FAILURE, EXIT_OK, oneLine, usageError } from "./errors.js";
import { type HttpEndpoint, type HttpHandlers, serveHttp } from "./http.js";

export interface PreparedNode<C> {
  config: C;
  /** Path of the user module (generator or handler), already loaded once. */
  modulePath: string;
  name: string;
  logger: Logger;
  /** Reachable etcd; the caller closes it. */
  client: Etcd3;
}

/**
 * What a master or worker command does before building its node, in the order that fails fastest:
 * validate the flags, load the user module (the node imports the same, cached, module), then reach etcd
 * (waiting while it answers without serving: see `connectNodeEtcd`).
 */
export async function prepareNode<S extends z.ZodType<SharedConfig>>(
  role: "master" | "worker",
  schema: S,
  options: Record<string, unknown>,
  module: { flag: "generator" | "handler"; load(path: string): Promise<unknown> },
  /** Checks across settings, run before anything is loaded or reached (a bad flag fails at once). */
  check?: (config: z.output<S>) => void,
): Promise<PreparedNode<z.output<S>>> {
  const modulePath = options[module.flag];
  if (typeof modulePath !== "string" || modulePath === "")
    throw usageError(`--${module.flag} <module> is required`);
  const config = parseConfig(schema, options);
  check?.(config);
  await module.load(modulePath);
  const name = config.name ?? defaultNodeName();
  const logger = createLogger({ name, role, level: config.logLevel });
  const client = await connectNodeEtcd(config, logger);
  return { config, modulePath, name, logger, client };
}

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
}

/**
 * Starts the node and runs it until SIGTERM or SIGINT, then stops it and resolves with the exit code
 * (0 after a clean stop). A second signal while stopping exits at once with 1.
 */
export async function runNode(options: RunNodeOptions): Promise<number> {
  const { node, logger } = options;
  let endpoint: HttpEndpoint | undefined;
  let starting = false;
  let stopRequested = false;
  let signalReceived!: (signal: NodeJS.Signals) => void;
  const signalled = new Promise<NodeJS.Signals>((resolve) => {
    signalReceived = resolve;
  });
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopRequested) {
      logger.warn({ signal }, "second signal while stopping: exiting now");
      process.exit(EXIT_FAILURE);
    }
    stopRequested = true;
    signalReceived(signal);
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  try {
    // HTTP first: liveness answers while the node waits for a slot or the barrier.
    if (options.http) endpoint = await serveHttp(options.http.address, options.http.handlers, logger);
    starting = true;
    const signal = await Promise.race([node.start().then(() => signalled), signalled]);
    logger.info({ signal }, "stopping");
    await node.stop();
    logger.info("stopped");
    return EXIT_OK;
  } catch (error) {
    if (starting)
      await node.stop().catch((stopError: unknown) => logger.warn({ err: stopError }, "stop failed"));
    if (stopRequested) {
      // Stopped while starting: the start's rejection is the expected consequence.
      logger.info({ reason: oneLine(error) }, "stopped before it was fully started");
      return EXIT_OK;
    }
    throw error;
  } finally {
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
    await endpoint?.close();
  }
}
