/** `escheduler worker --handler <module>`: runs the tasks the leader assigns to this node. */
import { workerCap, workerConfigSchema } from "./config.js";
import { loadHandler, Worker } from "../worker/index.js";
import { createRegistry, observeWorker } from "./metrics.js";
import { prepareNode, runNode } from "./run-node.js";
import { packageVersion } from "./version.js";

export async function runWorker(options: Record<string, unknown>): Promise<number> {
  const { config, modulePath, name, logger, client } = await prepareNode(
    "worker",
    workerConfigSchema,
    options,
    {
      flag: "handler",
      load: loadHandler,
    },
  );
  try {
    const worker = new Worker({
      client,
      root: config.root,
      name,
      ttlMs: config.ttl,
      expectedWorkers: config.workers,
      maxWorkers: workerCap(config),
      capacity: config.capacity,
      labels: config.labels,
      generation: config.generation,
      stopTimeoutMs: config.stopTimeout,
      handler: modulePath,
      logger,
      version: packageVersion(),
    });
    const registry = createRegistry();
    observeWorker(worker, registry);
    return await runNode({
      // SIGTERM drains: the tasks move while this worker still holds its lease, so they run nowhere only briefly.
      node: { start: () => worker.start(), stop: () => worker.drain() },
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
