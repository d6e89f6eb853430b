/** `escheduler worker --handler <module>`: runs the tasks the leader assigns to this node. */
import { createLogger, defaultNodeName, parseConfig, workerCap, workerConfigSchema } from "../node/index.js";
import { loadHandler, Worker } from "../worker/index.js";
import { connectEtcd } from "./connect.js";
import { usageError } from "./errors.js";
import { createRegistry, observeWorker } from "./metrics.js";
import { runNode } from "./run-node.js";
import { packageVersion } from "./version.js";

export async function runWorker(options: Record<string, unknown>): Promise<number> {
  const config = parseConfig(workerConfigSchema, options);
  const handlerPath = options.handler as string;
  if (!handlerPath) throw usageError("--handler <module> is required");
  // Fail on a bad module before touching etcd (the worker imports the same, cached, module).
  await loadHandler(handlerPath);
  const name = config.name ?? defaultNodeName();
  const logger = createLogger({ name, role: "worker", level: config.logLevel });
  const client = await connectEtcd(config);
  try {
    const worker = new Worker({
      client,
      root: config.root,
      name,
      ttlMs: config.ttl,
      expectedWorkers: config.workers,
      maxWorkers: workerCap(config),
      capacity: config.capacity,
      stopTimeoutMs: config.stopTimeout,
      handler: handlerPath,
      logger,
      version: packageVersion(),
    });
    const registry = createRegistry();
    observeWorker(worker, registry);
    return await runNode({
      node: worker,
      logger,
      http: config.http
        ? {
            address: config.http,
            handlers: {
              readiness: () => worker.readiness(),
              status: async () => ({
                name,
                role: "worker",
                root: config.root,
                status: worker.status,
                readiness: await worker.readiness(),
                tasks: worker.tasks(),
              }),
              metrics: registry,
            },
          }
        : undefined,
    });
  } finally {
    client.close();
  }
}
