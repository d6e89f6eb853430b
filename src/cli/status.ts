/** `escheduler status [--json]`: leader, barrier, last plan, workers with loads per group, tasks not running. */
import type { Etcd3 } from "etcd3";
import { type ClusterView, clusterReadiness, readClusterView } from "../readiness/index.js";
import { readControls } from "../master/controls.js";
import {
  type HistoryRecord,
  type KeyLayout,
  keyLayout,
  parseRecord,
  readPrefixPaged,
  type Task,
} from "../node/index.js";
import { parseConfig, sharedConfigSchema } from "./config.js";
import { connectEtcd } from "./connect.js";
import { EXIT_OK } from "./errors.js";
import { renderStatus, type StatusReport, statusReport } from "./status-view.js";

export async function runStatus(options: Record<string, unknown>): Promise<number> {
  const config = parseConfig(sharedConfigSchema, options);
  const client = await connectEtcd(config);
  try {
    const report = await readStatusReport(client, config.root);
    process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : renderStatus(report));
    return EXIT_OK;
  } finally {
    client.close();
  }
}

/** Reads the cluster at one revision (plus the task groups at that revision) and builds the report. */
export async function readStatusReport(client: Etcd3, root: string): Promise<StatusReport> {
  return (await readStatus(client, root)).report;
}

/** The report together with the view it was built from (the console searches the view's task ids). */
export async function readStatus(
  client: Etcd3,
  root: string,
): Promise<{ view: ClusterView; report: StatusReport }> {
  const keys = keyLayout(root);
  const view = await readClusterView(client, keys);
  const [groups, controls, lastSchedule] = await Promise.all([
    readTaskGroups(client, keys, view.revision),
    readControls(client, keys, view.revision),
    readLastSchedule(client, keys, view.revision),
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

/** The newest history record at `revision` (how the last schedule ended, a refusal included). */
async function readLastSchedule(
  client: Etcd3,
  keys: KeyLayout,
  revision: number,
): Promise<HistoryRecord | undefined> {
  const newest = await client
    .getAll()
    .prefix(keys.historyPrefix)
    .sort("Key", "Descend")
    .limit(1)
    .revision(String(revision))
    .strings();
  return parseRecord<HistoryRecord>(Object.values(newest)[0]);
}

/** Task key → group, read at the view's revision so counts and groups agree. */
async function readTaskGroups(
  client: Etcd3,
  keys: KeyLayout,
  revision: number,
): Promise<Map<string, string>> {
  const response = await readPrefixPaged(client, keys.tasksPrefix, { revision });
  const groups = new Map<string, string>();
  for (const kv of response.kvs) {
    const group = parseRecord<Task>(kv.value)?.group;
    if (group) groups.set(kv.key.toString(), group);
  }
  return groups;
}
