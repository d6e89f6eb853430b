import type { IKeyValue, IRangeRequest } from "etcd3";
import { type Controls, controlRanges, parseControls } from "../master/controls.js";
import { RangeState, type RangeEvent } from "../master/view/index.js";
import {
  type KeyLayout,
  keyText,
  type Logger,
  parseRecord,
  type PlanRecord,
  prefixRange,
  type TaskStatus,
  taskGroupSchema,
  type WorkerInfo,
} from "../node/index.js";
import {
  barrierLeftOf,
  type ClusterView,
  leaderRanges,
  oldestLeased,
  planOf,
  statusOf,
  workerOf,
} from "../readiness/index.js";
import { RecordsTail } from "./records-tail.js";

/** Every range the state holds, in one read at one revision: what `readStatus` and the console read. */
export function clusterRanges(keys: KeyLayout): IRangeRequest[] {
  return [
    prefixRange(keys.workersPrefix),
    { key: Buffer.from(keys.barrierLeft) },
    { key: Buffer.from(keys.plan) },
    prefixRange(keys.tasksPrefix),
    prefixRange(keys.statusPrefix),
    ...smallRanges(keys),
    keys.historyRange,
    prefixRange(keys.auditPrefix),
  ];
}

/** Held as raw key-values and parsed when asked: a few keys per master or worker. */
function smallRanges(keys: KeyLayout): IRangeRequest[] {
  return [...leaderRanges(keys), ...controlRanges(keys)];
}

/**
 * The cluster as `readStatus` and the console read it (workers, assignment with groups, statuses,
 * leader, barrier marker, plan, controls, history, audit), built from a snapshot and the events after it.
 * Each record is parsed once, when it arrives, with readiness's own rules (a bad record is skipped or
 * repaired with one warning naming its key; a registration or status without a lease is ignored), so a
 * change costs O(change). Invariant: after `replace(s)` and `apply` of every revision in (s.revision, r],
 * in order, `view()` and `controls()` equal what `readStatus` reads at r. No I/O, no clock.
 */
export class ClusterState {
  readonly records: RecordsTail;
  private readonly workers = new Map<string, WorkerInfo>();
  /** Worker → task id → group (undefined: the default group). */
  private readonly tasks = new Map<string, Map<string, string | undefined>>();
  private readonly statuses = new Map<string, Map<string, TaskStatus>>();
  /** Election candidates, then the control ranges. */
  private readonly small: RangeState;
  private barrierLeft?: string;
  private plan?: PlanRecord;
  private appliedRevision = 0;
  private taskCount = 0;

  constructor(
    private readonly keys: KeyLayout,
    private readonly logger: Logger,
  ) {
    this.records = new RecordsTail(keys, logger);
    this.small = new RangeState(smallRanges(keys));
  }

  /** The revision the state reflects (0 before the first snapshot). */
  get revision(): number {
    return this.appliedRevision;
  }

  /** Tasks assigned, over every worker. */
  get assigned(): number {
    return this.taskCount;
  }

  /** Replaces everything with `snapshot` (a read of `clusterRanges`, or of more), at once. */
  replace(snapshot: { revision: number; kvs: readonly IKeyValue[] }): void {
    this.workers.clear();
    this.tasks.clear();
    this.statuses.clear();
    this.records.clear();
    this.barrierLeft = undefined;
    this.plan = undefined;
    this.taskCount = 0;
    for (const kv of snapshot.kvs) this.take(kv.key, kv);
    this.small.replace(snapshot);
    this.appliedRevision = snapshot.revision;
  }

  /** Applies one revision's events; a revision not after the state's is ignored (already applied). */
  apply(revision: number, events: readonly RangeEvent[]): void {
    if (revision <= this.appliedRevision) return;
    for (const event of events) this.take(event.kv.key, event.type === "Put" ? event.kv : undefined);
    this.small.apply(revision, events);
    this.appliedRevision = revision;
  }

  /**
   * The view readiness and the status report are computed from. Its maps are the state's own: use it
   * before the next `apply`.
   */
  view(): ClusterView {
    const assignments = new Map<string, string[]>();
    for (const [worker, ids] of this.tasks) assignments.set(worker, [...ids.keys()]);
    const [candidates] = this.small.ranges();
    return {
      revision: this.appliedRevision,
      leader: oldestLeased(candidates ?? [], this.logger)?.value.toString(),
      barrierLeft: this.barrierLeft,
      plan: this.plan,
      workers: this.workers,
      assignments,
      statuses: this.statuses,
    };
  }

  /** Cordons, draining marks, pause, pins, holds and left marks (`readControls`). */
  controls(): Controls {
    return parseControls(this.keys, this.small.ranges().slice(leaderRanges(this.keys).length), this.logger);
  }

  /** The group of an assigned task (undefined: the default group, or not assigned). */
  groupOf(worker: string, taskId: string): string | undefined {
    return this.tasks.get(worker)?.get(taskId);
  }

  /** Worker → the ids assigned to it (live: read, never keep). */
  assignments(): ReadonlyMap<string, ReadonlyMap<string, unknown>> {
    return this.tasks;
  }

  statusOf(worker: string, taskId: string): TaskStatus | undefined {
    return this.statuses.get(worker)?.get(taskId);
  }

  isRegistered(worker: string): boolean {
    return this.workers.has(worker);
  }

  /** Applies one key's new value (`kv`) or its deletion (no `kv`). */
  private take(key: Buffer, kv: IKeyValue | undefined): void {
    const bytes = key.toString("latin1");
    const { keys, logger } = this;
    if (bytes === keys.barrierLeft) this.barrierLeft = kv && barrierLeftOf(keys, kv.value, logger);
    else if (bytes === keys.plan) this.plan = kv && planOf(keys, kv.value, logger);
    else if (bytes.startsWith(keys.workersPrefix)) this.takeWorker(key, kv);
    else if (bytes.startsWith(keys.tasksPrefix)) this.takeTask(key, kv);
    else if (bytes.startsWith(keys.statusPrefix)) this.takeStatus(key, kv);
    else this.records.take(key, kv?.value);
  }

  private takeWorker(key: Buffer, kv: IKeyValue | undefined): void {
    const text = keyText(key, this.logger);
    const name = text === undefined ? undefined : this.keys.parseWorker(text);
    if (name === undefined) return;
    const info = kv && workerOf(this.keys, kv, this.logger);
    if (info) this.workers.set(name, info);
    else this.workers.delete(name);
  }

  private takeTask(key: Buffer, kv: IKeyValue | undefined): void {
    const text = keyText(key, this.logger);
    const parts = text === undefined ? undefined : this.keys.parseTask(text);
    if (!parts) return;
    const ids = this.tasks.get(parts.worker);
    if (kv) {
      // A value that is not a task is the worker's to report (as failed); here it is in the default group.
      const parsed = taskGroupSchema.safeParse(parseRecord(kv.value));
      const group = parsed.success && parsed.data.group ? parsed.data.group : undefined;
      const byId = ids ?? new Map<string, string | undefined>();
      if (!byId.has(parts.taskId)) this.taskCount++;
      byId.set(parts.taskId, group);
      if (!ids) this.tasks.set(parts.worker, byId);
    } else if (ids?.delete(parts.taskId)) {
      this.taskCount--;
      if (ids.size === 0) this.tasks.delete(parts.worker);
    }
  }

  private takeStatus(key: Buffer, kv: IKeyValue | undefined): void {
    const text = keyText(key, this.logger);
    const parts = text === undefined ? undefined : this.keys.parseStatus(text);
    if (!parts) return;
    const entry = kv && statusOf(this.keys, kv, this.logger);
    const byTask = this.statuses.get(parts.worker);
    if (entry) {
      if (byTask) byTask.set(parts.taskId, entry.status);
      else this.statuses.set(parts.worker, new Map([[parts.taskId, entry.status]]));
    } else if (byTask?.delete(parts.taskId) && byTask.size === 0) {
      this.statuses.delete(parts.worker);
    }
  }
}
