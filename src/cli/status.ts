/** `escheduler status [--json]`: leader, barrier, last plan, workers with loads per group, tasks not running. */
import type { Etcd3 } from "etcd3";
import { type ClusterView, clusterReadiness, readClusterView } from "../readiness/index.js";
import { readControls } from "../master/controls.js";
import { readNewestHistory } from "../operator/history.js";
import {
  type KeyLayout,
  keyLayout,
  keyText,
  type Logger,
  parseRecord,
  readPrefixPaged,
  silentLogger,
  stderrLogger,
  taskGroupSchema,
} from "../node/index.js";
import { parseConfig, sharedConfigSchema } from "./config.js";
import { connectEtcd } from "./connect.js";
import { EXIT_OK } from "./errors.js";
import { renderStatus, type StatusReport, statusReport } from "./status-view.js";
import { printableDeep } from "./printable.js";

export async function runStatus(options: Record<string, unknown>): Promise<number> {
  const config = parseConfig(sharedConfigSchema, options);
  const client = await connectEtcd(config);
  try {
    const report = await readStatusReport(client, config.root, stderrLogger(config.logLevel));
    process.stdout.write(
      options.json ? `${JSON.stringify(report, null, 2)}\n` : renderStatus(printableDeep(report)),
    );
    return EXIT_OK;
  } finally {
    client.close();
  }
}

/** Reads the cluster at one revision (plus the task groups at that revision) and builds the report. */
export async function readStatusReport(
  client: Etcd3,
  root: string,
  logger: Logger = silentLogger,
): Promise<StatusReport> {
  return (await readStatus(client, root, logger)).report;
}

/** The report together with the view it was built from (the console searches the view's task ids). */
export async function readStatus(
  client: Etcd3,
  root: string,
  logger: Logger = silentLogger,
  /** Read at this revision instead of the current one. */
  revision?: number,
): Promise<{ view: ClusterView; report: StatusReport }> {
  const keys = keyLayout(root);
  const view = await readClusterView(client, keys, undefined, logger, revision);
  const [groups, controls, lastSchedule] = await Promise.all([
    readTaskGroups(client, keys, view.revision, logger),
    readControls(client, keys, view.revision, logger),
    readNewestHistory(client, keys, { revision: view.revision, logger }),
  ]);
  const report = statusReport(
    root,
    view,
    clusterReadiness(view),
    (worker, id) => groups.get(keys.task(worker, id)),
    { ...controls, lastSchedule },
  );
  return { view, report };
}

/** Task key → group, read at the view's revision so counts and groups agree. */
async function readTaskGroups(
  client: Etcd3,
  keys: KeyLayout,
  revision: number,
  logger: Logger,
): Promise<Map<string, string>> {
  const response = await readPrefixPaged(client, keys.tasksPrefix, { revision });
  const groups = new Map<string, string>();
  for (const kv of response.kvs) {
    const key = keyText(kv.key, logger);
    if (key === undefined) continue;
    // A value that is not a task is the worker's to report (as failed); here it is in the default group.
    const parsed = taskGroupSchema.safeParse(parseRecord(kv.value));
    if (parsed.success && parsed.data.group) groups.set(key, parsed.data.group);
  }
  return groups;
}
