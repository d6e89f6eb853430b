import { unassignedSummary } from "./unassigned.js";
import type { Etcd3 } from "etcd3";
import type { Plan } from "../balancer/index.js";
import { type HistoryMove, type HistoryRecord, type KeyLayout, requestDeadline } from "../node/index.js";
import type { WriteOp } from "./batches.js";
import { type CurrentAssignment, ownersOf, type TaskOwners } from "./changes.js";

/** History records kept under `/R/history/`; older ones are trimmed in the transaction that adds one. */
export const HISTORY_LIMIT = 1_000;
/** Task changes listed in one record; `movesTruncated` says when there were more. */
export const HISTORY_MOVES_LIMIT = 100;
const MAX_TRIM_PER_WRITE = 64;

export interface HistoryFacts {
  leader: string;
  epoch: number;
  reasons: string[];
  outcome: HistoryRecord["outcome"];
  refusal?: string;
  workers: string[];
  tasks: number;
  /** The generated ids (for the reasons when no worker could take any). */
  taskIds?: readonly string[];
  current: CurrentAssignment;
  /** `ownersOf(current)`, when the caller has it already. */
  owners?: TaskOwners;
  target?: Plan;
  /** Task id → why it left its worker (`failed on w2: <error>`), kept with its move. */
  why?: ReadonlyMap<string, string>;
}

/** Unassigned tasks a history record lists with their reason. */
export const HISTORY_UNASSIGNED_LIMIT = 20;

/** Every task that changes owner between `current` and `target`: moved (from → to), removed (from) and added (to). */
export function taskChanges(
  current: CurrentAssignment,
  target: Plan | undefined,
): { moved: HistoryMove[]; removed: HistoryMove[]; added: HistoryMove[] } {
  const before = new Map<string, string>();
  for (const [worker, ids] of current) for (const id of ids.keys()) before.set(id, worker);
  const after = new Map<string, string>();
  for (const [worker, ids] of Object.entries(target?.assignment ?? {})) {
    for (const id of ids) after.set(id, worker);
  }
  const moved: HistoryMove[] = [];
  const removed: HistoryMove[] = [];
  const added: HistoryMove[] = [];
  for (const [id, from] of before) {
    const to = after.get(id);
    if (to === undefined) removed.push({ id, from });
    else if (to !== from) moved.push({ id, from, to });
  }
  for (const [id, to] of after) if (!before.has(id)) added.push({ id, to });
  return { moved, removed, added };
}

interface Listed {
  count: number;
  listed: HistoryMove[];
}

/**
 * `taskChanges` counted, each kind listing at most `limit` changes (its first ones, in its order): a
 * history record keeps 100, and a first schedule of 50,000 tasks need not build 50,000 of them. Only
 * the tasks that change are visited: a task the plan lists under its owner is matched by one lookup in
 * `owners`, and a worker that keeps as many of its tasks as it has (its plan list names each task once,
 * as a plan's does) keeps them all.
 */
function listedChanges(
  owners: TaskOwners,
  current: CurrentAssignment,
  target: Plan | undefined,
  limit: number,
): { moved: Listed; removed: Listed; added: Listed } {
  const moved: Listed = { count: 0, listed: [] };
  const removed: Listed = { count: 0, listed: [] };
  const added: Listed = { count: 0, listed: [] };
  const note = (kind: Listed, change: HistoryMove) => {
    kind.count++;
    if (kind.listed.length < limit) kind.listed.push(change);
  };
  const assignment = target?.assignment ?? {};
  const placements = Object.entries(assignment);
  if (owners.size === 0) {
    // Nothing assigned yet (a first schedule): every placement is an addition.
    for (const [worker, ids] of placements) for (const id of ids) note(added, { id, to: worker });
    return { moved, removed, added };
  }
  // Task id → where the plan lists it other than under its owner (the last such list); per worker, its
  // place among the lists and how many of the tasks it owns its list names.
  const arrivals = new Map<string, string>();
  const place = new Map<string, number>();
  const keptOn = new Map<string, number>();
  for (const [worker, ids] of placements) {
    place.set(worker, place.size);
    let kept = 0;
    for (const id of ids) {
      if (owners.get(id) === worker) kept++;
      else arrivals.set(id, worker);
    }
    keptOn.set(worker, kept);
  }
  let listed = 0;
  for (const ids of current.values()) listed += ids.size;
  const owned = ownedCounts(owners, current, listed);
  // What the plan keeps of a worker's tasks: all of them, or those its list names (built only then).
  const kept = new Map<string, Set<string> | true>();
  const keptBy = (worker: string): Set<string> | true => {
    let keeps = kept.get(worker);
    if (keeps === undefined) {
      keeps =
        keptOn.get(worker) === owned(worker)
          ? true
          : new Set(Object.hasOwn(assignment, worker) ? assignment[worker] : []);
      kept.set(worker, keeps);
    }
    return keeps;
  };
  // A task listed elsewhere and under its owner too stays if its owner's list comes later (the last
  // listing is where the plan puts it); the owners that lose a task to another worker.
  const losing = new Set<string>();
  for (const [id, to] of arrivals) {
    const from = owners.get(id);
    if (from === undefined) continue;
    const keeps = keptBy(from);
    const stays =
      (keeps === true || keeps.has(id)) && (place.get(from) as number) > (place.get(to) as number);
    if (stays) arrivals.delete(id);
    else losing.add(from);
  }
  const visit = (id: string, from: string, keeps: Set<string> | true) => {
    const to = arrivals.get(id);
    if (to !== undefined) note(moved, { id, from, to });
    else if (keeps !== true && !keeps.has(id)) note(removed, { id, from });
  };
  if (listed === owners.size) {
    // No task listed twice: the owners' order is the current one, worker by worker; a worker that
    // keeps all its tasks and loses none to another has nothing to visit.
    for (const [worker, ids] of current) {
      const keeps = keptBy(worker);
      if (keeps === true && !losing.has(worker)) continue;
      for (const id of ids.keys()) visit(id, worker, keeps);
    }
  } else {
    const ids = owners.keys();
    const froms = owners.values();
    for (let i = 0; i < ids.length; i++) visit(ids[i], froms[i], keptBy(froms[i]));
  }
  for (const [id, to] of arrivals) if (!owners.has(id)) note(added, { id, to });
  return { moved, removed, added };
}

/** Worker → how many task ids `owners` gives it (`listed`: the current listings, counted). */
function ownedCounts(
  owners: TaskOwners,
  current: CurrentAssignment,
  listed: number,
): (worker: string) => number {
  if (listed === owners.size) return (worker) => current.get(worker)?.size ?? 0;
  const counts = new Map<string, number>();
  for (const worker of owners.values()) counts.set(worker, (counts.get(worker) ?? 0) + 1);
  return (worker) => counts.get(worker) ?? 0;
}

/** One compact record of a schedule: counts and up to 100 task changes, moves first, then removals, then additions. */
export function historyRecord(facts: HistoryFacts): HistoryRecord {
  const owners = facts.owners ?? ownersOf(facts.current);
  const { moved, removed, added } = listedChanges(owners, facts.current, facts.target, HISTORY_MOVES_LIMIT);
  const changes = [...moved.listed, ...removed.listed, ...added.listed]
    .slice(0, HISTORY_MOVES_LIMIT)
    .map((change) => {
      const why = change.from === undefined ? undefined : facts.why?.get(change.id);
      return why === undefined ? change : { ...change, why };
    });
  return {
    at: new Date().toISOString(),
    leader: facts.leader,
    epoch: facts.epoch,
    outcome: facts.outcome,
    ...(facts.refusal ? { refusal: facts.refusal } : {}),
    reasons: facts.reasons,
    workers: facts.workers,
    tasks: facts.tasks,
    added: added.count,
    removed: removed.count,
    moved: moved.count,
    unassigned: facts.target ? facts.target.unassigned.length : facts.tasks,
    ...unassignedSummary(facts.target, facts.taskIds ?? [], HISTORY_UNASSIGNED_LIMIT),
    moves: changes,
    ...(moved.count + removed.count + added.count > HISTORY_MOVES_LIMIT ? { movesTruncated: true } : {}),
  };
}

/**
 * The writes that append `record` at `revision` (the schedule's read revision) and delete the oldest
 * records beyond HISTORY_LIMIT; the caller commits them in its fenced transaction. One keys-only read.
 */
export async function historyWrites(
  client: Etcd3,
  keys: KeyLayout,
  revision: number,
  record: HistoryRecord,
  limit = HISTORY_LIMIT,
): Promise<WriteOp[]> {
  return [...(await historyTrims(client, keys, revision, limit)), historyPut(keys, revision, record)];
}

/**
 * The deletes of the oldest records beyond HISTORY_LIMIT once a record at `revision` is added (one
 * keys-only read). Only the leader writes history, so a schedule may read them while its task writes are
 * in flight and commit them with its record afterwards.
 */
export async function historyTrims(
  client: Etcd3,
  keys: KeyLayout,
  revision: number,
  limit = HISTORY_LIMIT,
): Promise<WriteOp[]> {
  const key = keys.history(revision);
  const existing = await client
    .getAll()
    .prefix(keys.historyPrefix)
    .sort("Key", "Ascend")
    .options(requestDeadline())
    .keys();
  // Only 16-digit leaves are history: a key written by hand under the prefix is neither counted nor trimmed.
  const older = existing.filter((stored) => stored !== key && keys.parseHistory(stored) !== undefined);
  // Bounded so the plan's transaction stays within etcd's operation limit even after a lowered limit.
  const excess = Math.min(MAX_TRIM_PER_WRITE, Math.max(0, older.length + 1 - limit));
  return older.slice(0, excess).map((stale): WriteOp => ({ type: "delete", key: stale }));
}

/** The put of `record` at `revision`. */
export function historyPut(keys: KeyLayout, revision: number, record: HistoryRecord): WriteOp {
  return { type: "put", key: keys.history(revision), value: JSON.stringify(record) };
}
