import type { EffectiveRestartPolicy, Plan, UnassignedReason } from "../balancer/index.js";
import type { Etcd3 } from "etcd3";
import {
  type FailureRecord,
  failureRecordSchema,
  type KeyLayout,
  type Logger,
  planRecordSchema,
  readPrefixPaged,
  readRecord,
} from "../node/index.js";
import {
  decide,
  type EscalationTask,
  type EscalationTasks,
  plainEscalation,
  withRestartPolicy,
} from "./escalation.js";
import type { ValidTask } from "./validation.js";

/** What a schedule needs of the failure escalation (the leader's FailureTracker provides it). */
export interface FailureInputs {
  defaults: EffectiveRestartPolicy;
  /** Task id → its failure record, as the leader knows it now. */
  records(): ReadonlyMap<string, FailureRecord>;
  /** Told each preview's tasks (their policy and value) and when the earliest exclusion ends. */
  observe?(tasks: EscalationTasks, nextChange: number | undefined): void;
}

/** The generated tasks after the escalation: their stored values, what the planner sees, and why. */
export interface Escalated {
  /** Every generated task, its value carrying its restart policy. */
  tasks: ValidTask[];
  /** The tasks the planner places: all but the quarantined ones. */
  plannable: ValidTask[];
  /** Task id → workers it must not go to. */
  exclude: Map<string, string[]>;
  /** Quarantined task id → its unassigned reason. */
  quarantined: Map<string, UnassignedReason>;
  /** Task id → where it failed (`failed on w2: <error>`), for the history of its move. */
  why: Map<string, string>;
}

/**
 * Applies the escalation to a schedule's tasks; without inputs, nothing changes. Only a task with a
 * failure record can be excluded, quarantined or explained, so only those are decided (in task order);
 * the others' escalation is worked out when looked up (a schedule of 100,000 tasks that never failed
 * builds no entry for each). Values are rewritten only when some policy goes into them. `positions`:
 * each id's index in `valid`.
 */
export function escalate(
  valid: ValidTask[],
  inputs: FailureInputs | undefined,
  now: number,
  positions: { get(id: string): number | undefined },
): Escalated {
  const exclude = new Map<string, string[]>();
  const quarantined = new Map<string, UnassignedReason>();
  const why = new Map<string, string>();
  if (!inputs) return { tasks: valid, plannable: valid, exclude, quarantined, why };
  const { defaults } = inputs;
  const records = inputs.records();
  const rewrite = defaults.limit !== 0 || valid.some((original) => original.task.restart !== undefined);
  const tasks = rewrite ? valid.map((original) => withRestartPolicy(original, defaults).valid) : valid;
  const known = new KnownEscalations(valid, defaults, positions);
  const failed = [...records.keys()]
    .map((id) => ({ id, at: known.position(id) }))
    .filter((entry): entry is { id: string; at: number } => entry.at !== undefined)
    .sort((a, b) => a.at - b.at);
  let nextChange: number | undefined;
  for (const { id } of failed) {
    const decision = decide(records.get(id), known.get(id) as EscalationTask, now);
    if (decision.failedOn.length > 0) why.set(id, decision.failedOn.join("; "));
    if (decision.quarantined) {
      quarantined.set(id, { kind: "quarantined", text: `quarantined: ${decision.failedOn.join("; ")}` });
      continue;
    }
    if (decision.exclude.length > 0) exclude.set(id, decision.exclude);
    if (decision.nextChange !== undefined)
      nextChange = Math.min(nextChange ?? decision.nextChange, decision.nextChange);
  }
  const plannable = quarantined.size === 0 ? tasks : tasks.filter((task) => !quarantined.has(task.task.id));
  inputs.observe?.(known, nextChange);
  return { tasks, plannable, exclude, quarantined, why };
}

/**
 * The generated tasks' escalation, each worked out (and kept) when first looked up. The leader keeps it
 * until its next schedule, so it holds of each task only what a lookup reads: its value when the task has
 * no restart policy of its own, else the task (not 100,000 tasks with their payloads parsed).
 */
class KnownEscalations implements EscalationTasks {
  private readonly looked = new Map<string, EscalationTask>();
  private readonly kept: ReadonlyArray<string | ValidTask>;

  constructor(
    tasks: readonly ValidTask[],
    private readonly defaults: EffectiveRestartPolicy,
    /** Task id → its index in `tasks`. */
    private readonly positions: { get(id: string): number | undefined },
  ) {
    this.kept = tasks.map((valid) => (valid.task.restart === undefined ? valid.value : valid));
  }

  /** The task's index in the generated list. */
  position(id: string): number | undefined {
    return this.positions.get(id);
  }

  get(id: string): EscalationTask | undefined {
    let escalation = this.looked.get(id);
    if (escalation) return escalation;
    const at = this.position(id);
    if (at === undefined) return undefined;
    const kept = this.kept[at];
    escalation =
      typeof kept === "string"
        ? plainEscalation(kept, this.defaults)
        : withRestartPolicy(kept, this.defaults).escalation;
    this.looked.set(id, escalation);
    return escalation;
  }
}

/** The plan with the quarantined tasks listed as unassigned (after the planned ones, in task order). */
export function withQuarantined(target: Plan, quarantined: ReadonlyMap<string, UnassignedReason>): Plan {
  if (quarantined.size === 0) return target;
  const reasons: Record<string, UnassignedReason> = Object.assign(Object.create(null), target.reasons);
  for (const [id, reason] of quarantined) reasons[id] = reason;
  return { ...target, unassigned: [...target.unassigned, ...quarantined.keys()], reasons };
}

/**
 * The escalation as the leader applies it, read from etcd for a preview (`escheduler plan`): the
 * defaults the last plan recorded and the failure records. Undefined when that leader ran without it.
 */
export async function readFailureInputs(
  client: Etcd3,
  keys: KeyLayout,
  logger: Logger,
): Promise<FailureInputs | undefined> {
  const [planValue, stored] = await Promise.all([
    client.get(keys.plan).string(),
    readPrefixPaged(client, keys.failuresPrefix),
  ]);
  const defaults = readRecord(planRecordSchema, keys.plan, planValue, logger)?.restart;
  if (!defaults) return undefined;
  const records = new Map<string, FailureRecord>();
  for (const kv of stored.kvs) {
    const key = kv.key.toString();
    const id = keys.parseFailure(key);
    const record = id === undefined ? undefined : readRecord(failureRecordSchema, key, kv.value, logger);
    if (id !== undefined && record) records.set(id, record);
  }
  return { defaults, records: () => records };
}
