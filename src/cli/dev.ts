/** `escheduler dev`: a local cluster of real processes with a live view; everything it starts, it removes. */

import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Etcd3 } from "etcd3";
import ms from "ms";
import { z } from "zod";
import { createEtcdClient } from "../node/index.js";
import { duration, parseConfig, sharedConfigSchema } from "./config.js";
import { DevCluster, type DevNode, type NodeExit } from "./dev-cluster.js";
import { describeChanges, Screen, stamped } from "./dev-view.js";
import { EXIT_FAILURE, EXIT_OK } from "./errors.js";
import { readStatusReport } from "./status.js";
import type { StatusReport } from "./status-view.js";
import { printableDeep } from "./printable.js";

const devOptionsSchema = z.object({
  workers: z.coerce.number().int().min(1).max(100).default(3),
  tasks: z.coerce.number().int().min(0).max(100_000).default(30),
  for: duration.optional(),
  etcd: z
    .string()
    .optional()
    .transform((value) => {
      const hosts = value
        ?.split(",")
        .map((host) => host.trim())
        .filter(Boolean);
      return hosts?.length ? hosts : undefined;
    }),
  logLevel: sharedConfigSchema.shape.logLevel,
});

const REFRESH_MS = 250;

export async function runDev(options: Record<string, unknown>): Promise<number> {
  // Only --etcd or ETCD_ENDPOINTS point dev at an existing etcd; ESCHEDULER_ETCD may name production.
  const config = parseConfig(devOptionsSchema, {
    ...options,
    etcd: options.etcd ?? process.env.ETCD_ENDPOINTS,
  });
  const tempDir = mkdtempSync(join(tmpdir(), "escheduler-dev-"));
  // A fresh token per run: the console's actions work for whoever reads this terminal.
  const adminToken = randomBytes(12).toString("base64url");
  const root = config.etcd ? `escheduler-dev-${randomBytes(3).toString("hex")}` : "escheduler";
  const screen = process.stdout.isTTY ? new Screen() : undefined;
  const say = (message: string) =>
    screen ? screen.note(message) : process.stdout.write(`${stamped(message)}\n`);
  let cluster: DevCluster | undefined;
  let client: Etcd3 | undefined;
  let stopReason: string | undefined;
  let exitCode = EXIT_OK;
  let wake: () => void = () => {};
  const stopped = new Promise<void>((resolve) => {
    wake = resolve;
  });
  const stop = (reason: string, code = EXIT_OK) => {
    if (stopReason) return;
    stopReason = reason;
    exitCode = code;
    wake();
  };
  const onSignal = (signal: NodeJS.Signals) => stop(signal);
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const timer =
    config.for === undefined
      ? undefined
      : setTimeout(() => stop(`--for ${ms(config.for ?? 0)} elapsed`), config.for);
  let refresh: NodeJS.Timeout | undefined;

  try {
    cluster = await DevCluster.start({
      workers: config.workers,
      tasks: config.tasks,
      logLevel: config.logLevel,
      tempDir,
      etcd: config.etcd,
      root,
      adminToken,
    });
    const running = cluster;
    const header = describeCluster(running, root, tempDir, adminToken);
    process.stdout.write(`${header}\n`);
    const watchExit = (node: DevNode) =>
      node.exited.then((exit) => {
        if (stopReason) return;
        say(describeExit(exit));
        if (node.role === "master") stop("the master exited", EXIT_FAILURE);
      });
    running.nodes.forEach(watchExit);

    client = createEtcdClient({ etcd: running.endpoints, dialTimeout: 2_000 });
    const etcd = client;
    let last: StatusReport | undefined;
    let busy = false;
    refresh = setInterval(async () => {
      if (busy || stopReason) return;
      busy = true;
      try {
        const report = printableDeep(await readStatusReport(etcd, root));
        for (const line of describeChanges(last, report)) say(line);
        last = report;
        screen?.draw(header, report);
      } catch {
        // etcd may be restarting or going away during shutdown; the next refresh tries again.
      } finally {
        busy = false;
      }
    }, REFRESH_MS);

    screen?.onKey(async (key) => {
      const victim = running.liveWorkers.at(-1);
      switch (key) {
        case "q":
        case "\u0003": // Ctrl-C arrives as a key in raw mode, not as SIGINT
          return stop(key === "q" ? "q pressed" : "Ctrl-C");
        case "+": {
          const node = await running.addWorker();
          say(`started ${node.name} (pid ${node.pid})`);
          return void watchExit(node);
        }
        case "-":
        case "k":
          if (!victim) return say("no worker left to stop");
          say(`${key === "k" ? "killing" : "stopping"} ${victim.name}`);
          return void victim.stop(key === "k" ? "SIGKILL" : "SIGTERM");
        case "s":
          return requestSchedule(running.master, adminToken, say);
      }
    });

    await stopped;
    return exitCode;
  } finally {
    clearTimeout(timer);
    clearInterval(refresh);
    screen?.close();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    if (stopReason) process.stdout.write(`${stamped(`stopping: ${stopReason}`)}\n`);
    client?.close();
    if (cluster) {
      const exits = await cluster.stop();
      process.stdout.write(`${stamped(`stopped ${exits.map(describeExit).join(", ")}`)}\n`);
    }
    rmSync(tempDir, { recursive: true, force: true });
    process.stdout.write(`${stamped(`removed ${tempDir}`)}\n`);
  }
}

function describeCluster(cluster: DevCluster, root: string, tempDir: string, adminToken: string): string {
  const etcd = cluster.etcdPid
    ? `etcd ${cluster.endpoints.join(",")} (pid ${cluster.etcdPid})`
    : `etcd ${cluster.endpoints.join(",")}`;
  const nodes = cluster.nodes.map((node) => `${node.name} (pid ${node.pid}, ${node.httpUrl})`).join(", ");
  return [
    `escheduler dev: ${etcd}, root ${root}`,
    `console: ${cluster.master?.httpUrl ?? "-"}/ (live web view; admin token ${adminToken})`,
    `nodes: ${nodes}`,
    `files: ${tempDir} (etcd data and one log per node; removed on exit)`,
  ].join("\n");
}

function describeExit({ node, code, signal }: NodeExit): string {
  const how = signal ? `killed by ${signal}` : `exit ${code}`;
  const tail = code !== 0 && !signal ? `; last log lines:\n  ${node.logTail(3).join("\n  ")}` : "";
  return `${node.name} ${how}${tail}`;
}

async function requestSchedule(
  master: DevNode | undefined,
  token: string,
  say: (message: string) => void,
): Promise<void> {
  if (!master) return;
  try {
    const response = await fetch(`${master.httpUrl}/schedule?reason=dev`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    });
    say(`schedule requested: HTTP ${response.status}`);
  } catch (error) {
    say(`schedule request failed: ${(error as Error).message}`);
  }
}
