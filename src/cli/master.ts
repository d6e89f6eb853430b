/** `escheduler master --generator <module>`: campaigns and, while leading, balances the tasks over the workers. */
import type { Etcd3 } from "etcd3";
import { readLeader } from "../readiness/index.js";
import { adminToken, createConsole, operatorActions, type WebConsole } from "../console/index.js";
import { pausedError } from "../master/controls.js";
import { loadGenerator, Master } from "../master/index.js";
import { readPaused } from "../operator/index.js";
import { keyLayout, type Logger } from "../node/index.js";
import { masterConfigSchema } from "./config.js";
import { oneLine } from "./errors.js";
import { HttpRefusal, type Readiness } from "./http.js";
import { createRegistry, observeMaster } from "./metrics.js";
import { observeQuarantine } from "./escalation-metrics.js";
import { prepareNode, runNode } from "./run-node.js";
import { readStatusReport } from "./status.js";
import { packageVersion } from "./version.js";

export async function runMaster(options: Record<string, unknown>): Promise<number> {
  let token: string | undefined;
  const { config, modulePath, name, logger, client } = await prepareNode(
    "master",
    masterConfigSchema,
    options,
    { flag: "generator", load: loadGenerator },
    // --http-admin without its token is a usage error, found before etcd is reached.
    (checked) => {
      token = adminToken(checked);
    },
  );
  const admin = token === undefined ? undefined : { token, run: operatorActions(client, config.root) };
  let webConsole: WebConsole | undefined;
  try {
    // The console watches etcd only while a page is open (or was asked within a minute); it serves at GET / of --http.
    if (config.http) webConsole = createConsole({ client, root: config.root, logger, admin });
    const master = new Master({
      client,
      root: config.root,
      name,
      ttlMs: config.ttl,
      expectedWorkers: config.workers,
      intervalMs: config.interval,
      rebalanceWaitMs: config.rebalanceWait,
      timeoutMs: config.timeout,
      barrierTimeoutMs: config.barrierTimeout,
      handoff: config.handoff,
      maxMoving: config.maxMoving,
      maxRemovalPercent: config.maxRemoval,
      restartLimit: config.restartLimit,
      restartWindowMs: config.restartWindow,
      quarantineAfter: config.quarantineAfter,
      autoCordonAfter: config.autoCordonAfter,
      reassignDelayMs: config.reassignDelay,
      generator: modulePath,
      logger,
      version: packageVersion(),
    });
    // The master logs its errors itself; listening keeps an `error` event from crashing the process.
    master.on("error", () => {});
    let started = false;
    const registry = createRegistry();
    observeMaster(master, registry);
    observeQuarantine(master, registry);
    return await runNode({
      node: {
        start: async () => {
          await master.start();
          started = true;
        },
        stop: () => master.stop(),
      },
      logger,
      http: config.http
        ? {
            address: config.http,
            handlers: {
              readiness: () => masterReadiness(started, client, config.root, logger),
              status: async () => ({
                name,
                role: "master",
                leader: master.isLeader,
                cluster: await readStatusReport(client, config.root, logger),
              }),
              metrics: registry,
              schedule: (reason) => scheduleNow(master, client, config.root, reason, logger),
              adminToken: token,
              console: webConsole?.routes,
            },
          }
        : undefined,
    });
  } finally {
    webConsole?.stop();
    client.close();
  }
}

/**
 * Ready once campaigning and some master (this one or another) leads: a standby is ready too, so
 * rollouts proceed. A pause does not make a master unready; it is listed as a note.
 */
async function masterReadiness(
  started: boolean,
  client: Etcd3,
  root: string,
  logger: Logger,
): Promise<Readiness> {
  if (!started) return { ready: false, reasons: ["master is not campaigning yet"] };
  const [leader, paused] = await Promise.all([
    readLeader(client, keyLayout(root), logger),
    readPaused(client, root, logger),
  ]);
  const notes = paused ? [pausedError(paused).message] : [];
  return leader === undefined
    ? { ready: false, reasons: ["no master is leading", ...notes] }
    : { ready: true, reasons: notes };
}

async function scheduleNow(master: Master, client: Etcd3, root: string, reason: string, logger: Logger) {
  if (!master.isLeader) {
    const leader = await readLeader(client, keyLayout(root));
    throw new HttpRefusal(
      409,
      `this master is not the leader; ask ${leader ?? "the leader (none right now)"}`,
    );
  }
  logger.info({ reason }, "schedule requested over http");
  try {
    return (await master.scheduleNow(reason)) ?? { error: "leadership ended before the schedule ran" };
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === "ERR_PAUSED" || code === "ERR_REMOVAL_GUARD") {
      throw new HttpRefusal(409, `schedule refused: ${oneLine(error)}`);
    }
    throw new HttpRefusal(500, `schedule failed: ${oneLine(error)}`);
  }
}
