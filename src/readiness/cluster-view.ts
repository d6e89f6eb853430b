import type { Etcd3, IKeyValue, IRangeRequest } from "etcd3";
import {
  barrierLeftSchema,
  hasLease,
  type KeyLayout,
  keyText,
  type Logger,
  type PlanRecord,
  planRecordSchema,
  prefixRange,
  readRangesPaged,
  readRecord,
  silentLogger,
  type TaskStatus,
  taskStatusSchema,
  type WorkerInfo,
  workerInfoSchema,
} from "../node/index.js";

/** Everything readiness is decided on, read at one revision. */
export interface ClusterView {
  revision: number;
  /** Current master name (election leader), undefined if none. */
  leader?: string;
  /** Value of `/R/worker_barrier_left` (RFC 3339 time), undefined while missing. */
  barrierLeft?: string;
  /** The last applied plan. */
  plan?: PlanRecord;
  /** Registered workers by name. */
  workers: Map<string, WorkerInfo>;
  /** Worker → task ids under `/R/task/<worker>/`. */
  assignments: Map<string, string[]>;
  /** Worker → task id → status. */
  statuses: Map<string, Map<string, TaskStatus>>;
}

/**
 * Reads workers, assignments, statuses, plan, marker and leader in one transaction, so all at ONE
 * revision. With `worker`, only that worker's registration, tasks and statuses are read (what
 * `workerReadiness` needs), so a readiness probe costs the same however large the cluster is.
 * Bad records are skipped or repaired, and registrations and statuses without a lease ignored, each
 * with one warning on `logger`.
 */
export async function readClusterView(
  client: Etcd3,
  keys: KeyLayout,
  scope?: { worker: string; tasks?: boolean },
  logger: Logger = silentLogger,
): Promise<ClusterView> {
  // Without tasks (`tasks: false`), the view's assignments and statuses are left empty.
  const withTasks = scope?.tasks !== false;
  const read = await readRangesPaged(client, [
    scope ? { key: Buffer.from(keys.worker(scope.worker)) } : prefixRange(keys.workersPrefix),
    { key: Buffer.from(keys.barrierLeft) },
    { key: Buffer.from(keys.plan) },
    ...leaderRanges(keys),
    ...(withTasks
      ? [
          // Payloads can be large; only the ids matter here.
          prefixRange(scope ? keys.workerTasksPrefix(scope.worker) : keys.tasksPrefix, { keys_only: true }),
          prefixRange(scope ? keys.workerStatusPrefix(scope.worker) : keys.statusPrefix),
        ]
      : []),
  ]);
  const [workerKvs = [], markerKvs = [], planKvs = [], candidates = [], taskKvs = [], statusKvs = []] =
    read.ranges;

  const workers = new Map<string, WorkerInfo>();
  for (const kv of workerKvs) {
    const key = keyText(kv.key, logger);
    const name = key === undefined ? undefined : keys.parseWorker(key);
    if (name === undefined || key === undefined || !hasLease(kv, logger)) continue;
    const unknown = { name, host: "", pid: 0, version: "", startedAt: "" };
    const info = readRecord(workerInfoSchema, key, kv.value, logger, { repair: () => unknown }) ?? unknown;
    workers.set(name, { ...info, name });
  }
  const assignments = new Map<string, string[]>();
  for (const kv of taskKvs) {
    const key = keyText(kv.key, logger);
    const parts = key === undefined ? undefined : keys.parseTask(key);
    if (!parts) continue;
    const ids = assignments.get(parts.worker) ?? [];
    ids.push(parts.taskId);
    assignments.set(parts.worker, ids);
  }
  const statuses = new Map<string, Map<string, TaskStatus>>();
  for (const kv of statusKvs) {
    const key = keyText(kv.key, logger);
    const parts = key === undefined ? undefined : keys.parseStatus(key);
    if (!parts || key === undefined || !hasLease(kv, logger)) continue;
    const status = readRecord(taskStatusSchema, key, kv.value, logger);
    if (!status) continue;
    const byTask = statuses.get(parts.worker) ?? new Map<string, TaskStatus>();
    byTask.set(parts.taskId, status);
    statuses.set(parts.worker, byTask);
  }
  // The marker's presence is what counts; an unreadable time is shown as such.
  const barrierLeft = readRecord(barrierLeftSchema, keys.barrierLeft, markerKvs[0]?.value, logger, {
    text: true,
    repair: () => "(unreadable time)",
  });
  return {
    revision: read.revision,
    leader: oldestLeased(candidates, logger)?.value.toString(),
    barrierLeft,
    plan: readRecord(planRecordSchema, keys.plan, planKvs[0]?.value, logger),
    workers,
    assignments,
    statuses,
  };
}

/** The current leader's name (the oldest campaign key's value), or undefined when no master campaigns. */
export async function readLeader(
  client: Etcd3,
  keys: KeyLayout,
  logger: Logger = silentLogger,
): Promise<string | undefined> {
  const result = await readRangesPaged(client, leaderRanges(keys));
  return oldestLeased(result.ranges.flat(), logger)?.value.toString();
}

/**
 * Masters campaign under `/R/election/` (`KeyLayout.electionCandidate`); nothing outside the root is
 * read. Every key is read (one per master): one written by hand without a lease must be skipped.
 */
function leaderRanges(keys: KeyLayout): [IRangeRequest] {
  return [prefixRange(keys.electionCandidatesPrefix)];
}

/** The oldest campaign key under a lease wins, as in etcd's election recipe. */
function oldestLeased(candidates: IKeyValue[], logger: Logger): IKeyValue | undefined {
  let best: IKeyValue | undefined;
  for (const kv of candidates) {
    if (!hasLease(kv, logger)) continue;
    if (!best || BigInt(kv.create_revision) < BigInt(best.create_revision)) best = kv;
  }
  return best;
}
