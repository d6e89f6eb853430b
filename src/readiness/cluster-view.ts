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
  /** Read at this revision instead of the current one. */
  revision?: number,
): Promise<ClusterView> {
  // Without tasks (`tasks: false`), the view's assignments and statuses are left empty.
  const withTasks = scope?.tasks !== false;
  const read = await readRangesPaged(
    client,
    [
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
    ],
    revision === undefined ? {} : { revision },
  );
  const [workerKvs = [], markerKvs = [], planKvs = [], candidates = [], taskKvs = [], statusKvs = []] =
    read.ranges;

  const workers = new Map<string, WorkerInfo>();
  for (const kv of workerKvs) {
    const worker = workerOf(keys, kv, logger);
    if (worker) workers.set(worker.name, worker);
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
    const entry = statusOf(keys, kv, logger);
    if (!entry) continue;
    const byTask = statuses.get(entry.worker) ?? new Map<string, TaskStatus>();
    byTask.set(entry.taskId, entry.status);
    statuses.set(entry.worker, byTask);
  }
  return {
    revision: read.revision,
    leader: oldestLeased(candidates, logger)?.value.toString(),
    barrierLeft: barrierLeftOf(keys, markerKvs[0]?.value, logger),
    plan: planOf(keys, planKvs[0]?.value, logger),
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
export function leaderRanges(keys: KeyLayout): [IRangeRequest] {
  return [prefixRange(keys.electionCandidatesPrefix)];
}

/**
 * A registration as readiness counts it: undefined for a bad key or one without a lease; a record of the
 * wrong shape is repaired to a bare name. Each problem gives one warning naming the key.
 */
export function workerOf(keys: KeyLayout, kv: LeasedKv, logger: Logger): WorkerInfo | undefined {
  const key = keyText(kv.key, logger);
  const name = key === undefined ? undefined : keys.parseWorker(key);
  if (name === undefined || key === undefined || !hasLease(kv, logger)) return undefined;
  const unknown = { name, host: "", pid: 0, version: "", startedAt: "" };
  const info = readRecord(workerInfoSchema, key, kv.value, logger, { repair: () => unknown }) ?? unknown;
  return { ...info, name };
}

/** A task's status as readiness counts it: undefined for a bad key, a key without a lease or a bad record. */
export function statusOf(
  keys: KeyLayout,
  kv: LeasedKv,
  logger: Logger,
): { worker: string; taskId: string; status: TaskStatus } | undefined {
  const key = keyText(kv.key, logger);
  const parts = key === undefined ? undefined : keys.parseStatus(key);
  if (!parts || key === undefined || !hasLease(kv, logger)) return undefined;
  const status = readRecord(taskStatusSchema, key, kv.value, logger);
  return status && { ...parts, status };
}

/** The marker's presence is what counts; an unreadable time is shown as such. */
export function barrierLeftOf(keys: KeyLayout, value: RecordValue, logger: Logger): string | undefined {
  return readRecord(barrierLeftSchema, keys.barrierLeft, value, logger, {
    text: true,
    repair: () => "(unreadable time)",
  });
}

export function planOf(keys: KeyLayout, value: RecordValue, logger: Logger): PlanRecord | undefined {
  return readRecord(planRecordSchema, keys.plan, value, logger);
}

type RecordValue = Buffer | string | undefined;
/** What a key-value read from etcd (or held in memory) carries. */
export interface LeasedKv {
  key: Buffer | string;
  value: Buffer | string;
  lease: string;
}

/** The oldest campaign key under a lease wins, as in etcd's election recipe. */
export function oldestLeased<T extends LeasedKv & { create_revision: string | number }>(
  candidates: Iterable<T>,
  logger: Logger,
): T | undefined {
  let best: T | undefined;
  for (const kv of candidates) {
    if (!hasLease(kv, logger)) continue;
    if (!best || BigInt(kv.create_revision) < BigInt(best.create_revision)) best = kv;
  }
  return best;
}
