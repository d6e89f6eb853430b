import { randomBytes } from "node:crypto";
import type { Etcd3 } from "etcd3";
import {
  type AuditRecord,
  auditRecordSchema,
  type CordonRecord,
  cordonRecordSchema,
  type FailureRecord,
  type KeyLayout,
  type Logger,
  readPrefixPaged,
  readRecord,
} from "../node/index.js";
import type { EscalationTasks } from "./escalation.js";
import type { LeaderWriter } from "./fencing.js";

/** Who an automatic cordon is recorded as (in its record, the audit trail and `status`). */
export const AUTO_CORDON_ACTOR = "escheduler (auto)";

export interface AutoCordonFacts {
  /** Cordon a worker once this many distinct tasks qualify there (0: never). */
  after: number;
  records: ReadonlyMap<string, FailureRecord>;
  /** The tasks of the last schedule (their policies give each exhaustion its window). */
  tasks: EscalationTasks;
  /** The workers whose status says a task is running. */
  runningOn: (taskId: string) => ReadonlySet<string> | undefined;
  now: number;
  /** When an operator last uncordoned the worker (ms): failures before it no longer count there. */
  uncordonedAt?: (worker: string) => number | undefined;
}

/**
 * The workers where at least `after` distinct tasks reached their restart limit (within their window,
 * after the worker's last uncordon), each with those tasks, sorted; with `elsewhere`, only tasks that
 * now run on another worker count.
 */
function exhaustedOn(facts: AutoCordonFacts, elsewhere: boolean): Map<string, string[]> {
  const byWorker = new Map<string, string[]>();
  if (facts.after <= 0) return byWorker;
  for (const [taskId, record] of facts.records) {
    const task = facts.tasks.get(taskId);
    if (!task || task.fingerprint !== record.fingerprint) continue;
    const running = [...(facts.runningOn(taskId) ?? [])];
    for (const [worker, entry] of Object.entries(record.workers)) {
      if (entry.exhaustedAt === undefined) continue;
      const exhaustedAt = Date.parse(entry.exhaustedAt);
      if (!(exhaustedAt + task.policy.window > facts.now)) continue;
      if (exhaustedAt <= (facts.uncordonedAt?.(worker) ?? Number.NEGATIVE_INFINITY)) continue;
      if (elsewhere && !running.some((other) => other !== worker)) continue;
      byWorker.set(worker, [...(byWorker.get(worker) ?? []), taskId]);
    }
  }
  const verdicts = new Map<string, string[]>();
  for (const worker of [...byWorker.keys()].sort()) {
    const tasks = (byWorker.get(worker) ?? []).sort();
    if (tasks.length >= facts.after) verdicts.set(worker, tasks);
  }
  return verdicts;
}

/**
 * The workers to cordon, each with the tasks that condemn it: tasks that reached their restart limit
 * there (within their window) and now run on another worker. A task failing everywhere (poison) runs
 * nowhere and condemns no worker; a host that breaks tasks healthy elsewhere does. Sorted by worker.
 */
export function workersToCordon(facts: AutoCordonFacts): Map<string, string[]> {
  return exhaustedOn(facts, true);
}

/** The workers where `after` tasks reached their limit, wherever those run now (see `withinShare`). */
export function failingWorkers(facts: AutoCordonFacts): Set<string> {
  return new Set(exhaustedOn(facts, false).keys());
}

/**
 * The workers the leader may cordon now: none when the workers with as many failures (`failing`, which
 * includes the condemned), with those cordoned automatically already, are more than half of the
 * registered workers. Failures on most workers at once are an outage of something they share (a
 * database, the network), not a bad host: cordoning them would leave new tasks nowhere to go — and
 * as such an outage ends, its tasks start again elsewhere one by one, so counting only the condemned
 * would cordon the first workers before the others qualify.
 */
export function withinShare(
  condemned: ReadonlyMap<string, string[]>,
  failing: ReadonlySet<string>,
  autoCordoned: ReadonlySet<string>,
  registered: ReadonlySet<string>,
): Map<string, string[]> {
  const all = new Set(
    [...condemned.keys(), ...failing, ...autoCordoned].filter((worker) => registered.has(worker)),
  );
  return all.size * 2 > registered.size ? new Map() : new Map(condemned);
}

/** The reason an automatic cordon records: `auto: 3 tasks failed here that run elsewhere (t1, t2, t3)`. */
export function autoCordonReason(tasks: readonly string[]): string {
  const named = tasks.slice(0, 5).join(", ") + (tasks.length > 5 ? `, … ${tasks.length - 5} more` : "");
  const count = tasks.length === 1 ? "1 task" : `${tasks.length} tasks`;
  return `auto: ${count} failed here that run elsewhere (${named})`;
}

/**
 * The leader's automatic cordon (`--auto-cordon-after K`, off by default): it follows which workers
 * run the tasks that have failure records, and cordons a worker when K of them qualify
 * (`workersToCordon`): never one already cordoned or drained, never one not registered, never when
 * most workers qualify (`withinShare`), only on failures after an operator's last uncordon of it (read
 * from the audit trail, so a new leader does not undo the uncordon), and at most once per worker per
 * leadership term. The cordon is an ordinary record (`uncordon` lifts it), fenced like every leader
 * write, with an audit record; the cordon watch then schedules as for an operator's.
 */
export class AutoCordon {
  /** Task id → workers whose status says running (only tasks with a failure record are followed). */
  private readonly running = new Map<string, Set<string>>();
  private readonly done = new Set<string>();
  private latest?: {
    records: ReadonlyMap<string, FailureRecord>;
    tasks: EscalationTasks;
  };
  private evaluating = false;
  /** Facts changed while an evaluation ran: evaluate once more after it. */
  private again = false;
  /** The outage warning is logged once per term. */
  private warnedOutage = false;

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

  /**
   * Cordons the workers that qualify now. Cheap while nobody qualifies (no read of etcd); otherwise one
   * evaluation at a time against etcd, repeated while facts changed meanwhile. Errors are logged and
   * the next failure or start tries again.
   */
  check(records: ReadonlyMap<string, FailureRecord>, tasks: EscalationTasks): void {
    if (!this.enabled) return;
    this.latest = { records, tasks };
    if (this.evaluating) {
      this.again = true;
      return;
    }
    if (this.verdicts().size === 0) return;
    this.evaluating = true;
    void this.evaluate().finally(() => {
      this.evaluating = false;
      if (!this.again || !this.latest) return;
      this.again = false;
      this.check(this.latest.records, this.latest.tasks);
    });
  }

  private facts(uncordonedAt?: (worker: string) => number | undefined): AutoCordonFacts {
    return {
      after: this.after,
      records: this.latest?.records ?? new Map(),
      tasks: this.latest?.tasks ?? new Map(),
      runningOn: (taskId) => this.running.get(taskId),
      now: Date.now(),
      uncordonedAt,
    };
  }

  private verdicts(facts = this.facts()): Map<string, string[]> {
    const verdicts = workersToCordon(facts);
    for (const worker of this.done) verdicts.delete(worker);
    return verdicts;
  }

  private async evaluate(): Promise<void> {
    try {
      const { registered, cordoned, autoCordoned, uncordoned } = await this.readFleet();
      const facts = this.facts((worker) => uncordoned.get(worker));
      const verdicts = this.verdicts(facts);
      for (const worker of verdicts.keys()) if (cordoned.has(worker)) verdicts.delete(worker);
      const allowed = withinShare(verdicts, failingWorkers(facts), autoCordoned, registered);
      if (allowed.size < verdicts.size && !this.warnedOutage) {
        this.warnedOutage = true;
        this.logger.warn(
          { workers: [...verdicts.keys()], registered: registered.size },
          "tasks failed on most workers: an outage, not a bad host; no automatic cordon",
        );
      }
      for (const [worker, condemning] of allowed) {
        this.done.add(worker);
        await this.cordon(worker, condemning);
      }
    } catch (error) {
      this.logger.warn({ err: error }, "automatic cordon failed; trying again at the next failure");
    }
  }

  /** Registered workers, cordoned ones (which by the leader), and each worker's last uncordon. */
  private async readFleet() {
    const { client, keys, logger } = this;
    const [workers, cordons, audit] = await Promise.all([
      readPrefixPaged(client, keys.workersPrefix, { keysOnly: true }),
      readPrefixPaged(client, keys.cordonsPrefix),
      readPrefixPaged(client, keys.auditPrefix),
    ]);
    const registered = new Set(
      workers.kvs
        .map((kv) => kv.key.toString().slice(keys.workersPrefix.length))
        .filter((w) => !w.includes("/")),
    );
    const cordoned = new Set<string>();
    const autoCordoned = new Set<string>();
    for (const kv of cordons.kvs) {
      const worker = kv.key.toString().slice(keys.cordonsPrefix.length);
      cordoned.add(worker);
      const record = readRecord(cordonRecordSchema, kv.key.toString(), kv.value, logger);
      if (record?.by === AUTO_CORDON_ACTOR) autoCordoned.add(worker);
    }
    const uncordoned = new Map<string, number>();
    for (const kv of audit.kvs) {
      const record = readRecord(auditRecordSchema, kv.key.toString(), kv.value, logger);
      if (record?.action !== "uncordon" || record.worker === undefined) continue;
      const at = Date.parse(record.at);
      if (at > (uncordoned.get(record.worker) ?? Number.NEGATIVE_INFINITY)) uncordoned.set(record.worker, at);
    }
    return { registered, cordoned, autoCordoned, uncordoned };
  }

  private async cordon(worker: string, tasks: readonly string[]): Promise<void> {
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
