/**
 * `--reassign-delay`: the tasks of a crashed worker wait for a worker of the same name instead of moving.
 * Pure: the leader reads the facts at one revision, `decideHolds` says which tasks wait and which hold
 * records to write, and the planner runs over the rest (`withoutHeld`, then `withHeld`).
 */
import ms from "ms";
import type { Plan, PlanInput, Task } from "../balancer/index.js";
import {
  type HeldRecord,
  heldRecordSchema,
  type KeyLayout,
  keyText,
  leftMarkSchema,
  type Logger,
  readRecord,
  repairHeldRecord,
} from "../node/index.js";
import type { WriteOp } from "./batches.js";

/** A task's `maxDowntime` in ms (a number of ms, or a duration such as "30s"); undefined when absent or bad. */
export function maxDowntimeMs(value: unknown): number | undefined {
  const parsed = typeof value === "string" ? (ms as (text: string) => number | undefined)(value) : value;
  return typeof parsed === "number" && Number.isFinite(parsed) && parsed >= 0 ? parsed : undefined;
}

/** Why `value` is not a valid `maxDowntime`, or undefined when it is. */
export function maxDowntimeProblem(value: unknown): string | undefined {
  if (value === undefined || maxDowntimeMs(value) !== undefined) return undefined;
  return `must be a duration: a number of ms (0 or more) or a string such as "30s" (got ${JSON.stringify(value)})`;
}

/** What the hold decision reads, all at one revision. */
export interface HoldFacts {
  nowMs: number;
  /** `--reassign-delay` in ms; 0 makes no new hold (holds already recorded still count). */
  delayMs: number;
  /** Registered workers. */
  registered: ReadonlySet<string>;
  /** Worker → ids under `/R/task/<worker>/`. */
  current: ReadonlyMap<string, Iterable<string>>;
  /** The generated tasks by id. */
  tasks: ReadonlyMap<string, Task>;
  /** `/R/held/<worker>` records. */
  records: ReadonlyMap<string, HeldRecord>;
  /** Workers that stopped on purpose (`/R/left/<worker>`): their tasks are never held. */
  left: ReadonlySet<string>;
}

/** One gone worker's hold: the tasks that stay assigned to it until `until`. */
export interface Hold {
  worker: string;
  since: string;
  until: string;
  taskIds: string[];
}

export interface HoldDecision {
  /** Worker → its hold (only workers with tasks held). */
  holds: Map<string, Hold>;
  /** New hold records to write. */
  puts: Map<string, HeldRecord>;
  /** Hold records to delete: the worker is back, the hold ended or was released, or nothing is left to hold. */
  deletes: string[];
  /** Left marks to delete: the worker is gone and its tasks go now. */
  leftDeletes: string[];
  /** Earliest end of a hold (ms since the epoch), undefined when nothing is held. */
  nextEndMs?: number;
}

/**
 * Decides the holds. A gone worker (tasks, no registration) that did not leave on purpose keeps the
 * generated tasks listed under it until its hold ends: the recorded one, or a new one of `delayMs` from
 * now. A task whose `maxDowntime` is below the hold's length is not held, nor any task of a key that
 * is not wholly held on that worker (a key stays together). Any worker that is registered ends its hold.
 */
export function decideHolds(facts: HoldFacts): HoldDecision {
  const holds = new Map<string, Hold>();
  const puts = new Map<string, HeldRecord>();
  const keyMembers = new Map<string, string[]>();
  for (const task of facts.tasks.values()) {
    if (task.key !== undefined) keyMembers.set(task.key, [...(keyMembers.get(task.key) ?? []), task.id]);
  }
  for (const [worker, listed] of facts.current) {
    if (facts.registered.has(worker) || facts.left.has(worker)) continue;
    const record = facts.records.get(worker);
    const window = record
      ? { since: record.since, until: record.until }
      : facts.delayMs > 0
        ? { since: iso(facts.nowMs), until: iso(facts.nowMs + facts.delayMs) }
        : undefined;
    if (!window || Date.parse(window.until) <= facts.nowMs) continue;
    const lengthMs = Date.parse(window.until) - Date.parse(window.since);
    const ids = new Set<string>();
    for (const id of listed) {
      const task = facts.tasks.get(id);
      if (!task) continue;
      const limit = maxDowntimeMs(task.maxDowntime);
      if (limit === undefined || limit >= lengthMs) ids.add(id);
    }
    for (const id of [...ids]) {
      const key = facts.tasks.get(id)?.key;
      if (key !== undefined && !(keyMembers.get(key) ?? []).every((member) => ids.has(member)))
        ids.delete(id);
    }
    if (ids.size === 0) continue;
    holds.set(worker, { worker, ...window, taskIds: [...ids] });
    if (!record) puts.set(worker, window);
  }
  const ends = [...holds.values()].map((hold) => Date.parse(hold.until));
  return {
    holds,
    puts,
    deletes: [...facts.records.keys()].filter((worker) => !holds.has(worker)),
    leftDeletes: [...facts.left].filter((worker) => !facts.registered.has(worker)),
    ...(ends.length > 0 ? { nextEndMs: Math.min(...ends) } : {}),
  };
}

/** The holds of one schedule, from what it read at one revision. */
export function scheduleHolds(
  read: {
    workers: ReadonlyArray<{ name: string }>;
    current: ReadonlyMap<string, ReadonlyMap<string, string>>;
    tasks: ReadonlyArray<{ task: Task }>;
    controls: { holds?: ReadonlyMap<string, HeldRecord>; left?: ReadonlySet<string> };
  },
  delayMs: number,
): HoldDecision {
  const registered = new Set(read.workers.map((worker) => worker.name));
  const left = read.controls.left ?? new Set<string>();
  // Only a gone worker's tasks are looked up: without one, no index of every task is built.
  const gone = [...read.current.keys()].some((worker) => !registered.has(worker) && !left.has(worker));
  return decideHolds({
    nowMs: Date.now(),
    delayMs,
    registered,
    current: new Map([...read.current].map(([worker, ids]) => [worker, ids.keys()])),
    tasks: gone ? new Map(read.tasks.map((valid) => [valid.task.id, valid.task])) : new Map(),
    records: read.controls.holds ?? new Map(),
    left,
  });
}

/** The planner's input without the held tasks: they are neither planned nor listed as a gone worker's. */
export function withoutHeld<I extends PlanInput>(input: I, decision: HoldDecision): I {
  if (decision.holds.size === 0) return input;
  const held = heldIds(decision);
  const current = new Map<string, readonly string[]>();
  for (const [worker, ids] of currentEntries(input.current)) {
    current.set(worker, decision.holds.has(worker) ? ids.filter((id) => !held.has(id)) : ids);
  }
  return { ...input, tasks: input.tasks.filter((task) => !held.has(task.id)), current };
}

/**
 * The plan with each held task kept on its gone worker (no add, no remove, no move). Without a plan
 * (no worker may take tasks) one is made that places nothing, so the held tasks still stay.
 */
export function withHeld(
  target: Plan | undefined,
  input: PlanInput,
  decision: HoldDecision,
): Plan | undefined {
  if (decision.holds.size === 0) return target;
  const plan = target ?? placesNothing(input);
  const assignment: Record<string, string[]> = Object.assign(Object.create(null), plan.assignment);
  for (const hold of decision.holds.values()) assignment[hold.worker] = [...hold.taskIds];
  return { ...plan, assignment };
}

/**
 * The new hold records, written before the schedule's task changes: once a crashed worker's short-downtime
 * tasks run elsewhere, its held tasks show as held (and a leader taking over finds the hold recorded).
 */
export function newHoldWrites(keys: KeyLayout, decision: HoldDecision): WriteOp[] {
  return [...decision.puts].map(([worker, record]): WriteOp => ({
    type: "put",
    key: keys.held(worker),
    value: JSON.stringify(record),
  }));
}

/** The hold records and left marks that go, written after the task changes (the moves they let happen), before the plan. */
export function endedHoldWrites(keys: KeyLayout, decision: HoldDecision): WriteOp[] {
  return [
    ...decision.deletes.map((worker): WriteOp => ({ type: "delete", key: keys.held(worker) })),
    ...decision.leftDeletes.map((worker): WriteOp => ({ type: "delete", key: keys.left(worker) })),
  ];
}

/** Hold records and left marks from the key-values of `/R/held/` and `/R/left/` (bad holds read as over). */
export function parseHoldKeys(
  keys: KeyLayout,
  records: Iterable<{ key: Buffer | string; value: Buffer | string }>,
  marks: Iterable<{ key: Buffer | string; value: Buffer | string }>,
  logger: Logger,
): { holds: Map<string, HeldRecord>; left: Set<string> } {
  const holds = new Map<string, HeldRecord>();
  for (const kv of records) {
    const key = keyText(kv.key, logger);
    const worker = key === undefined ? undefined : keys.parseHeld(key);
    if (worker === undefined || key === undefined) continue;
    const record = readRecord(heldRecordSchema, key, kv.value, logger, { repair: repairHeldRecord });
    if (record) holds.set(worker, record);
  }
  const left = new Set<string>();
  for (const kv of marks) {
    const key = keyText(kv.key, logger);
    const worker = key === undefined ? undefined : keys.parseLeft(key);
    // The mark's presence is what counts; a bad value is reported and still marks.
    if (worker === undefined || key === undefined) continue;
    readRecord(leftMarkSchema, key, kv.value, logger);
    left.add(worker);
  }
  return { holds, left };
}

/** A schedule's figures of the holds. */
export interface HoldFigures {
  /** Tasks kept for crashed workers (`--reassign-delay`). */
  held: number;
  /** When the first hold ends (ms since the epoch); absent when nothing is held. */
  holdEndsAt?: number;
}

/** The schedule's figures: how many tasks are held, and when the first hold ends. */
export function holdFigures(decision: HoldDecision): HoldFigures {
  let held = 0;
  for (const hold of decision.holds.values()) held += hold.taskIds.length;
  return decision.nextEndMs === undefined ? { held } : { held, holdEndsAt: decision.nextEndMs };
}

/**
 * Plans with the held tasks left out (`planFree` sees neither them nor their listing on the gone
 * worker), then keeps each on its gone worker: no add, no remove, no move.
 */
export function planAroundHolds(
  input: PlanInput,
  decision: HoldDecision,
  planFree: (input: PlanInput) => Plan | undefined,
): Plan | undefined {
  const free = withoutHeld(input, decision);
  return withHeld(planFree(free), free, decision);
}

function heldIds(decision: HoldDecision): Set<string> {
  return new Set([...decision.holds.values()].flatMap((hold) => hold.taskIds));
}

function currentEntries(current: PlanInput["current"]): Array<[string, readonly string[]]> {
  if (!current) return [];
  return current instanceof Map
    ? [...(current as ReadonlyMap<string, readonly string[]>)]
    : Object.entries(current as Readonly<Record<string, readonly string[]>>);
}

function placesNothing(input: PlanInput): Plan {
  const remove: Record<string, string[]> = Object.create(null);
  for (const [worker, ids] of currentEntries(input.current)) if (ids.length > 0) remove[worker] = [...ids];
  const reasons: Plan["reasons"] = Object.create(null);
  for (const task of input.tasks)
    reasons[task.id] = { kind: "capacity", text: "capacity: no worker may take tasks" };
  return {
    assignment: Object.create(null),
    add: Object.create(null),
    remove,
    unassigned: input.tasks.map((task) => task.id),
    reasons,
    moved: 0,
  };
}

function iso(timeMs: number): string {
  return new Date(timeMs).toISOString();
}
