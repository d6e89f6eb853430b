import { IdTable, type Plan } from "../balancer/index.js";
import type { KeyLayout } from "../node/index.js";
import type { WriteOp } from "./batches.js";
import type { PlannedPut } from "./handoff.js";
import type { IndexedTaskLookup, ValidTask } from "./validation.js";

/** worker → task id → the value stored under `/R/task/<worker>/<id>`. */
export type CurrentAssignment = Map<string, Map<string, string>>;

/**
 * Task id → the worker it is assigned to now (the last one listing it, should several), in the order
 * the ids first appear: one index a schedule builds once (`ownersOf`). Indexed over the generated ids
 * (`generated`, validation's index of them), an id among them is found at its position and only the
 * others go into a table of their own (the planner's IdTable); the ids not generated are counted as
 * they come, so the removal guard need not look every owned id up again.
 */
export class TaskOwners {
  private readonly ids: string[] = [];
  private readonly workers: string[] = [];
  /** Generated position → 1 + the number of its id here (0: not owned). */
  private readonly at: Int32Array;
  private table?: IdTable;
  private outside = 0;

  constructor(
    private readonly expected: number,
    readonly generated?: IndexedTaskLookup,
  ) {
    this.at = new Int32Array(generated?.count ?? 0);
  }

  /** Records `worker` as the owner of `id` (a later record of an id replaces its worker, not its place). */
  set(id: string, worker: string): void {
    const position = this.generated?.positions.get(id);
    if (position !== undefined) {
      const earlier = this.at[position] - 1;
      if (earlier >= 0) this.workers[earlier] = worker;
      else {
        this.at[position] = this.ids.push(id);
        this.workers.push(worker);
      }
      return;
    }
    this.table ??= new IdTable(this.ids, this.expected);
    this.ids.push(id);
    const earlier = this.table.add(this.ids.length - 1);
    if (earlier < 0) {
      this.workers.push(worker);
      this.outside++;
    } else {
      this.ids.pop();
      this.workers[earlier] = worker;
    }
  }

  get size(): number {
    return this.ids.length;
  }

  get(id: string): string | undefined {
    const at = this.numberOf(id);
    return at === undefined ? undefined : this.workers[at];
  }

  has(id: string): boolean {
    return this.numberOf(id) !== undefined;
  }

  /** How many of the ids `generated` does not have (known without a lookup when it is the index these were built over). */
  missingFrom(generated: { has(id: string): boolean }): number {
    if (this.generated !== undefined && generated === this.generated) return this.outside;
    let missing = 0;
    for (const id of this.ids) if (!generated.has(id)) missing++;
    return missing;
  }

  keys(): readonly string[] {
    return this.ids;
  }

  values(): readonly string[] {
    return this.workers;
  }

  *[Symbol.iterator](): IterableIterator<[string, string]> {
    for (let i = 0; i < this.ids.length; i++) yield [this.ids[i], this.workers[i]];
  }

  private numberOf(id: string): number | undefined {
    const position = this.generated?.positions.get(id);
    if (position === undefined) return this.table?.get(id);
    const at = this.at[position] - 1;
    return at < 0 ? undefined : at;
  }
}

/** The owners of the tasks of `current`, indexed over the generated ids when `generated` is given. */
export function ownersOf(current: CurrentAssignment, generated?: IndexedTaskLookup): TaskOwners {
  let listed = 0;
  for (const ids of current.values()) listed += ids.size;
  const owners = new TaskOwners(listed, generated);
  for (const [worker, ids] of current) for (const id of ids.keys()) owners.set(id, worker);
  return owners;
}

/** What one schedule writes: deletes first, then puts (highest priority first). */
export interface ScheduleChanges {
  removals: WriteOp[];
  puts: PlannedPut[];
  /** Tasks newly placed on a worker. */
  added: number;
  /** Tasks that stay on their worker but whose stored value changed (payload, priority, …). */
  updated: number;
  removed: number;
  /** Tasks taken from one worker and given to another. */
  moved: number;
}

/**
 * Turns a plan into key writes, highest priority first. Within a priority each worker's additions stay
 * together, so one 128-op transaction feeds one or two workers (each gets its tasks in a few watch
 * events and claims them in a few transactions) instead of one task each to 128 workers.
 * Without a plan (no live worker) every current assignment is removed.
 */
export function scheduleChanges(
  keys: KeyLayout,
  plan: Plan | undefined,
  tasks: { get(id: string): ValidTask | undefined },
  current: CurrentAssignment,
): ScheduleChanges {
  const removals: WriteOp[] = [];
  const removedIds = new Set<string>();
  const removeLists = plan
    ? Object.entries(plan.remove)
    : [...current].map(([w, ids]) => [w, [...ids.keys()]] as const);
  for (const [worker, ids] of removeLists) {
    for (const id of ids) {
      removals.push({ type: "delete", key: keys.task(worker, id) });
      removedIds.add(id);
    }
  }

  const puts: PlannedPut[] = [];
  let added = 0;
  let updated = 0;
  let moved = 0;
  for (const [worker, ids] of Object.entries(plan?.assignment ?? {})) {
    const additions = new Set(plan?.add[worker] ?? []);
    const stored = current.get(worker);
    for (const id of plan?.add[worker] ?? []) {
      const valid = tasks.get(id);
      if (!valid) continue;
      puts.push(putOf(keys, worker, valid));
      added++;
      if (removedIds.has(id)) moved++;
    }
    for (const id of ids) {
      const valid = tasks.get(id);
      if (!valid || additions.has(id) || stored?.get(id) === valid.value) continue;
      puts.push(putOf(keys, worker, valid));
      updated++;
    }
  }
  // A stable sort: within one priority, the worker-by-worker order above is kept.
  puts.sort((a, b) => b.priority - a.priority);
  return {
    removals,
    puts,
    added,
    updated,
    removed: removals.length,
    moved,
  };
}

function putOf(keys: KeyLayout, worker: string, valid: ValidTask): PlannedPut {
  return {
    taskId: valid.task.id,
    worker,
    key: keys.task(worker, valid.task.id),
    value: valid.value,
    priority: valid.task.priority ?? 0,
  };
}
