import { type Etcd3, type IKeyValue, type IRangeRequest, SortOrder, SortTarget } from "etcd3";
import {
  type KeyLayout,
  type PlanRecord,
  parseRecord,
  prefixRange,
  readRangesPaged,
  type TaskStatus,
  type WorkerInfo,
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

/** The oldest campaign key wins, as in etcd's election recipe. */
const OLDEST_ONLY: Partial<IRangeRequest> = {
  sort_target: SortTarget.Create,
  sort_order: SortOrder.Ascend,
  limit: 1,
};

/**
 * Reads workers, assignments, statuses, plan, marker and leader in one transaction, so all at ONE
 * revision. With `worker`, only that worker's registration, tasks and statuses are read (what
 * `workerReadiness` needs), so a readiness probe costs the same however large the cluster is.
 */
export async function readClusterView(
  client: Etcd3,
  keys: KeyLayout,
  scope?: { worker: string },
): Promise<ClusterView> {
  const read = await readRangesPaged(client, [
    scope ? { key: Buffer.from(keys.worker(scope.worker)) } : prefixRange(keys.workersPrefix),
    // Payloads can be large; only the ids matter here.
    prefixRange(scope ? keys.workerTasksPrefix(scope.worker) : keys.tasksPrefix, { keys_only: true }),
    prefixRange(scope ? keys.workerStatusPrefix(scope.worker) : keys.statusPrefix),
    { key: Buffer.from(keys.barrierLeft) },
    { key: Buffer.from(keys.plan) },
    ...leaderRanges(keys),
  ]);
  const [workerKvs, taskKvs, statusKvs, markerKvs, planKvs, ...candidates] = read.ranges;

  const workers = new Map<string, WorkerInfo>();
  for (const kv of workerKvs) {
    const name = keys.parseWorker(kv.key.toString());
    if (name === undefined) continue;
    workers.set(
      name,
      parseRecord<WorkerInfo>(kv.value) ?? { name, host: "", pid: 0, version: "", startedAt: "" },
    );
  }
  const assignments = new Map<string, string[]>();
  for (const kv of taskKvs) {
    const parts = keys.parseTask(kv.key.toString());
    if (!parts) continue;
    const ids = assignments.get(parts.worker) ?? [];
    ids.push(parts.taskId);
    assignments.set(parts.worker, ids);
  }
  const statuses = new Map<string, Map<string, TaskStatus>>();
  for (const kv of statusKvs) {
    const parts = keys.parseStatus(kv.key.toString());
    const status = parseRecord<TaskStatus>(kv.value);
    if (!parts || !status) continue;
    const byTask = statuses.get(parts.worker) ?? new Map<string, TaskStatus>();
    byTask.set(parts.taskId, status);
    statuses.set(parts.worker, byTask);
  }
  return {
    revision: read.revision,
    leader: oldest(candidates.flat())?.value.toString(),
    barrierLeft: markerKvs[0]?.value.toString(),
    plan: parseRecord<PlanRecord>(planKvs[0]?.value),
    workers,
    assignments,
    statuses,
  };
}

/** The current leader's name (the oldest campaign key's value), or undefined when no master campaigns. */
export async function readLeader(client: Etcd3, keys: KeyLayout): Promise<string | undefined> {
  const result = await readRangesPaged(client, leaderRanges(keys));
  return oldest(result.ranges.flat())?.value.toString();
}

/** Masters campaign under `/R/election/` (`KeyLayout.electionCandidate`); nothing outside the root is read. */
function leaderRanges(keys: KeyLayout): IRangeRequest[] {
  return [prefixRange(keys.electionCandidatesPrefix, OLDEST_ONLY)];
}

function oldest(candidates: IKeyValue[]): IKeyValue | undefined {
  let best: IKeyValue | undefined;
  for (const kv of candidates) {
    if (!best || BigInt(kv.create_revision) < BigInt(best.create_revision)) best = kv;
  }
  return best;
}
