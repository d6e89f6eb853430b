import { randomBytes } from "node:crypto";
import type { Etcd3 } from "etcd3";
import type { AuditRecord, CordonRecord, FailureRecord, KeyLayout, Logger } from "../node/index.js";
import type { EscalationTask } from "./escalation.js";
import type { LeaderWriter } from "./fencing.js";

/** Who an automatic cordon is recorded as (in its record, the audit trail and `status`). */
export const AUTO_CORDON_ACTOR = "escheduler (auto)";

export interface AutoCordonFacts {
  /** Cordon a worker once this many distinct tasks qualify there (0: never). */
  after: number;
  records: ReadonlyMap<string, FailureRecord>;
  /** The tasks of the last schedule (their policies give each exhaustion its window). */
  tasks: ReadonlyMap<string, EscalationTask>;
  /** The workers whose status says a task is running. */
  runningOn: (taskId: string) => ReadonlySet<string> | undefined;
  now: number;
}

/**
 * The workers to cordon, each with the tasks that condemn it: tasks that reached their restart limit
 * there (within their window) and now run on another worker. A task failing everywhere (poison) runs
 * nowhere and condemns no worker; a host that breaks tasks healthy elsewhere does. Sorted by worker.
 */
export function workersToCordon(facts: AutoCordonFacts): Map<string, string[]> {
  const verdicts = new Map<string, string[]>();
  if (facts.after <= 0) return verdicts;
  const byWorker = new Map<string, string[]>();
  for (const [taskId, record] of facts.records) {
    const task = facts.tasks.get(taskId);
    if (!task || task.fingerprint !== record.fingerprint) continue;
    const running = facts.runningOn(taskId);
    for (const [worker, entry] of Object.entries(record.workers)) {
      if (entry.exhaustedAt === undefined) continue;
      if (!(Date.parse(entry.exhaustedAt) + task.policy.window > facts.now)) continue;
      if (![...(running ?? [])].some((other) => other !== worker)) continue;
      byWorker.set(worker, [...(byWorker.get(worker) ?? []), taskId]);
    }
  }
  for (const worker of [...byWorker.keys()].sort()) {
    const tasks = (byWorker.get(worker) ?? []).sort();
    if (tasks.length >= facts.after) verdicts.set(worker, tasks);
  }
  return verdicts;
}

/** The reason an automatic cordon records: `auto: 3 tasks failed here that run elsewhere (t1, t2, t3)`. */
export function autoCordonReason(tasks: readonly string[]): string {
  const named = tasks.slice(0, 5).join(", ") + (tasks.length > 5 ? `, … ${tasks.length - 5} more` : "");
  const count = tasks.length === 1 ? "1 task" : `${tasks.length} tasks`;
  return `auto: ${count} failed here that run elsewhere (${named})`;
}

/**
 * The leader's automatic cordon (`--auto-cordon-after K`, off by default): it follows which workers
 * run the tasks that have failure records, and cordons a worker — once per leadership term, never one
 * already cordoned or drained, never one not registered — when K of them qualify (`workersToCordon`).
 * The cordon is an ordinary record (`uncordon` lifts it), fenced like every leader write, with an
 * audit record; the cordon watch then schedules as for an operator's.
 */
export class AutoCordon {
  /** Task id → workers whose status says running (only tasks with a failure record are followed). */
  private readonly running = new Map<string, Set<string>>();
  private readonly done = new Set<string>();
  private checking: Promise<void> = Promise.resolve();

  constructor(
    private readonly client: Etcd3,
    private readonly keys: KeyLayout,
    private readonly writer: LeaderWriter,
    private readonly after: number,
    private readonly logger: Logger,
  ) {}

  get enabled(): boolean {
    return this.after > 0;
  }

  /** A status of a task with a failure record: `running` there or not (deleted, failed, stopping). */
  follow(taskId: string, worker: string, running: boolean): void {
    const workers = this.running.get(taskId) ?? new Set<string>();
    if (running) workers.add(worker);
    else workers.delete(worker);
    if (workers.size > 0) this.running.set(taskId, workers);
    else this.running.delete(taskId);
  }

  /** Cordons the workers that qualify now (one check at a time; errors are logged, tried at the next event). */
  check(records: ReadonlyMap<string, FailureRecord>, tasks: ReadonlyMap<string, EscalationTask>): void {
    if (!this.enabled) return;
    const verdicts = workersToCordon({
      after: this.after,
      records,
      tasks,
      runningOn: (taskId) => this.running.get(taskId),
      now: Date.now(),
    });
    for (const [worker, condemning] of verdicts) {
      if (this.done.has(worker)) continue;
      this.done.add(worker);
      this.checking = this.checking
        .then(() => this.cordon(worker, condemning))
        .catch((error: unknown) => {
          this.done.delete(worker);
          this.logger.warn(
            { err: error, worker },
            "automatic cordon failed; trying again at the next failure",
          );
        });
    }
  }

  private async cordon(worker: string, tasks: readonly string[]): Promise<void> {
    const [cordoned, registered] = await Promise.all([
      this.client.get(this.keys.cordon(worker)).exec(),
      this.client.get(this.keys.worker(worker)).exec(),
    ]);
    // An operator's cordon or drain stands; a worker gone has nothing to cordon.
    if (cordoned.kvs.length > 0 || registered.kvs.length === 0) return;
    const at = new Date().toISOString();
    const reason = autoCordonReason(tasks);
    const record: CordonRecord = { mode: "cordon", by: AUTO_CORDON_ACTOR, reason, at };
    const audit: AuditRecord = { at, action: "cordon", by: AUTO_CORDON_ACTOR, reason, worker };
    const auditKey = this.keys.audit(Date.parse(at), randomBytes(4).toString("hex"));
    await this.writer.commit([
      { type: "put", key: this.keys.cordon(worker), value: JSON.stringify(record) },
      { type: "put", key: auditKey, value: JSON.stringify(audit) },
    ]);
    this.logger.warn({ worker, tasks: tasks.length, reason }, "worker cordoned automatically");
  }
}
