import type { Plan, PlanInput, Task } from "./types.js";

/** What the caller remembers of earlier plans. */
export interface MoveHistory {
  /** Task id → how often it moved between workers so far (a count, 0 or more; absent: never). */
  moves: ReadonlyMap<string, number>;
  /** Worker name → when it joined, in any increasing unit (the master uses etcd revisions); higher is younger. */
  joinedAt: ReadonlyMap<string, number>;
  /** Task id → its index in the input's tasks, if the caller knows (checked: a wrong index is searched for). */
  positions?: { get(id: string): number | undefined };
  /** Task id → the last worker listing it in the input's `current`, if the caller knows (trusted). */
  owners?: { get(id: string): string | undefined };
}

interface Move {
  id: string;
  from: string;
  to: string;
}

/**
 * Chooses, among interchangeable tasks (no key, same group, same weight), which ones move and where,
 * without changing how many of each kind any worker gets — so balance, capacity, the number of moves
 * and every other property of `plan` hold. A worker that gives tasks away gives those that moved
 * least; the tasks of a worker that is leaving go, those that moved most first, to the youngest
 * workers, and so do tasks that moved before and are between owners now. In a rolling update (one
 * new worker joins, one old worker drains, repeat) a task that already moved then lands on a worker
 * that stays, so no task moves more than twice. Pure and deterministic (ties by id and name).
 */
export function settleMoves(plan: Plan, input: PlanInput, history: MoveHistory): Plan {
  // Nothing moves between workers and nothing moved before: no choice to make (a first schedule).
  if (plan.moved === 0 && history.moves.size === 0) return plan;
  // Only the tasks a move can involve are looked up (those added somewhere, then the lists of the workers
  // the moves name): indexing all 100,000 tasks and their owners cost more than the whole settling.
  const known = new KnownTasks(input, history);
  // The lists a move can touch, as far as the plan shows: its additions and the lists of the workers
  // that gain or lose tasks (a move's old owner loses it); any other owner is learned once found.
  const changed = new Set([...Object.keys(plan.add), ...Object.keys(plan.remove)]);
  known.learn([
    ...Object.values(plan.add),
    ...[...changed].map((worker) => (Object.hasOwn(plan.assignment, worker) ? plan.assignment[worker] : [])),
  ]);
  const taskOf = (id: string): Task | undefined => known.task(id);
  const excluded = new Set(
    input.exclude instanceof Map ? input.exclude.keys() : Object.keys(input.exclude ?? {}),
  );
  const classOf = (id: string): string | undefined => {
    const task = taskOf(id);
    if (!task || task.key !== undefined || isConstrained(task) || excluded.has(id)) return undefined;
    return `${task.group ?? ""}\u0000${task.weight ?? 1}`;
  };
  const owner = known.owner;

  const staying: Move[] = [];
  const leaving: Move[] = [];
  for (const [to, ids] of Object.entries(plan.add)) {
    for (const id of ids) {
      const from = owner.get(id);
      if (from === to || classOf(id) === undefined) continue;
      // A task between owners (its move cut short by a new schedule) is placed like a leaving one.
      if (from === undefined) {
        if ((history.moves.get(id) ?? 0) > 0) leaving.push({ id, from: "", to });
      } else (plan.assignment[from]?.length ? staying : leaving).push({ id, from, to });
    }
  }
  if (staying.length + leaving.length === 0) return plan;

  const movesOf = (id: string) => history.moves.get(id) ?? 0;
  const joinedAt = (worker: string) => history.joinedAt.get(worker) ?? 0;
  const byId = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  // Only the workers a move names change: their lists, as sets, are all that is rebuilt.
  const touched = new Set<string>();
  for (const m of [...staying, ...leaving]) touched.add(m.from).add(m.to);
  const assignment = new Map<string, Set<string>>();
  for (const worker of touched) {
    const ids = plan.assignment[worker];
    if (ids) assignment.set(worker, new Set(ids));
  }
  const finalMoves: Move[] = [];
  // Only a kept task that moved less than some chosen one can take its place (the chosen win ties): a
  // donor whose chosen tasks never moved (most of a join's) keeps its choice, and its list is not read.
  const stayingGroups = [...groupBy(staying, (m) => `${m.from}\u0000${classOf(m.id)}`).values()].map(
    (group) => ({ group, most: group.reduce((most, m) => Math.max(most, movesOf(m.id)), 0) }),
  );
  known.learn(
    stayingGroups.flatMap(({ group, most }) => (most > 0 ? [assignment.get(group[0].from) ?? []] : [])),
  );

  // A donor's own tasks by class, sorted out once (not once per class: 20 passes over every list);
  // settling one class adds and removes only that class's ids, so the others' lists stay as taken.
  const keptByDonor = new Map<string, Map<string, string[]>>();
  const keptOf = (from: string, kind: string): string[] => {
    let byClass = keptByDonor.get(from);
    if (!byClass) {
      byClass = new Map();
      for (const id of assignment.get(from) ?? []) {
        const idKind = owner.get(id) === from ? classOf(id) : undefined;
        if (idKind === undefined) continue;
        const list = byClass.get(idKind);
        if (list) list.push(id);
        else byClass.set(idKind, [id]);
      }
      keptByDonor.set(from, byClass);
    }
    return byClass.get(kind) ?? [];
  };

  // Staying donors give the tasks that moved least, to the same destinations.
  for (const { group, most } of stayingGroups) {
    const { from } = group[0];
    const kind = classOf(group[0].id) as string;
    const kept = most === 0 ? [] : keptOf(from, kind).filter((id) => movesOf(id) < most);
    const chosen = new Set(group.map((m) => m.id));
    const candidates = [...group.map((m) => m.id), ...kept].sort(
      (a, b) => movesOf(a) - movesOf(b) || Number(chosen.has(b)) - Number(chosen.has(a)) || byId(a, b),
    );
    const giving = candidates.slice(0, group.length);
    const givingSet = new Set(giving);
    const donor = assignment.get(from) as Set<string>;
    for (const id of chosen) if (!givingSet.has(id)) donor.add(id);
    for (const id of giving) donor.delete(id);
    // Unchanged choices keep their destination; swapped-in tasks take the freed ones.
    const freed = group.filter((m) => !givingSet.has(m.id)).map((m) => m.to);
    for (const m of group) if (givingSet.has(m.id)) finalMoves.push(m);
    for (const id of giving) if (!chosen.has(id)) finalMoves.push({ id, from, to: freed.shift() as string });
  }

  // A leaving worker's tasks: those that moved most go to the youngest workers.
  for (const group of groupBy(leaving, (m) => classOf(m.id) as string).values()) {
    const ids = group.map((m) => m.id).sort((a, b) => movesOf(b) - movesOf(a) || byId(a, b));
    const slots = group.map((m) => m.to).sort((a, b) => joinedAt(b) - joinedAt(a) || byId(a, b));
    ids.forEach((id, i) => finalMoves.push({ id, from: owner.get(id) ?? "", to: slots[i] }));
  }

  for (const m of [...staying, ...leaving]) assignment.get(m.to)?.delete(m.id);
  for (const m of finalMoves) assignment.get(m.to)?.add(m.id);
  // A list the settling left as the plan made it keeps the plan's order; the others are sorted again.
  const changedLists = [...assignment].filter(([worker, ids]) => !sameMembers(plan.assignment[worker], ids));
  known.learn(changedLists.map(([, ids]) => ids));
  return rebuild(
    plan,
    known.currentOf(touched),
    assignment,
    new Set(changedLists.map(([worker]) => worker)),
    {
      indexOf: (id) => known.index(id) as number,
      tasks: input.tasks,
    },
  );
}

/** Whether `list` holds exactly the ids of `ids` (a list names an id once). */
function sameMembers(list: readonly string[] | undefined, ids: ReadonlySet<string>): boolean {
  return list !== undefined && list.length === ids.size && list.every((id) => ids.has(id));
}

/**
 * The plan with the lists of the workers in `assignment` (those the settling touched, as sets) and
 * their diffs: the lists in `changed` recomputed in the planner's order (priority, highest first, then
 * input order), every other one the plan's own, which the planner wrote in that order.
 */
function rebuild(
  plan: Plan,
  current: Map<string, string[]>,
  assignment: Map<string, Set<string>>,
  changed: ReadonlySet<string>,
  order: { indexOf: (id: string) => number; tasks: readonly Task[] },
): Plan {
  const { indexOf, tasks } = order;
  const priority = (id: string) => tasks[indexOf(id)]?.priority ?? 0;
  const byOrder = (a: string, b: string) => priority(b) - priority(a) || indexOf(a) - indexOf(b);
  const result: Plan = {
    assignment: Object.assign(Object.create(null), plan.assignment),
    add: Object.assign(Object.create(null), plan.add),
    remove: Object.assign(Object.create(null), plan.remove),
    unassigned: plan.unassigned,
    reasons: plan.reasons,
    moved: plan.moved,
  };
  for (const [worker, ids] of assignment) {
    const list = changed.has(worker) ? [...ids].sort(byOrder) : (plan.assignment[worker] as string[]);
    result.assignment[worker] = list;
    const held = new Set(current.get(worker) ?? []);
    const added = list.filter((id) => !held.has(id));
    if (added.length > 0) result.add[worker] = added;
    else delete result.add[worker];
    const stale = (current.get(worker) ?? []).filter((id) => !ids.has(id));
    if (stale.length > 0) result.remove[worker] = [...new Set(stale)];
    else delete result.remove[worker];
  }
  return result;
}

/** A task with a constraint is not interchangeable with its group's others. */
function isConstrained(task: Task): boolean {
  return task.selector !== undefined || task.spread !== undefined || task.antiKey !== undefined;
}

/**
 * The input's index and current owner of the ids it learned (an owner as the last current list naming
 * the id says): from the caller's indexes when given, else by one pass over the tasks and the current
 * lists per `learn`. With both of the caller's indexes, an id they answer for needs nothing of its own
 * here (a join touching every worker's list then copies no 100,000-entry map): only an id whose given
 * position is wrong is searched for and kept.
 */
class KnownTasks {
  private readonly learned = new Set<string>();
  private readonly indexes = new Map<string, number>();
  private readonly owners = new Map<string, string>();
  private readonly current: Array<readonly [string, readonly string[]]>;
  /** Both of the caller's indexes: ids are looked up in them, not copied. */
  private readonly hinted?: Required<Pick<MoveHistory, "positions" | "owners">>;
  readonly owner: { get(id: string): string | undefined };

  constructor(
    private readonly input: PlanInput,
    private readonly hints: Pick<MoveHistory, "positions" | "owners">,
  ) {
    this.current =
      input.current instanceof Map
        ? [...input.current.entries()]
        : Object.entries((input.current ?? {}) as Record<string, readonly string[]>);
    const { positions, owners } = hints;
    if (positions && owners) this.hinted = { positions, owners };
    this.owner = this.hinted?.owners ?? this.owners;
  }

  /** Looks up the ids of `lists` not learned yet. */
  learn(lists: Iterable<Iterable<string>>): void {
    if (this.hinted) return this.learnMisplaced(lists, this.hinted.positions);
    const wanted = new Set<string>();
    for (const ids of lists) for (const id of ids) if (!this.learned.has(id)) wanted.add(id);
    if (wanted.size === 0) return;
    const { positions, owners } = this.hints;
    const unplaced = new Set<string>();
    for (const id of wanted) {
      this.learned.add(id);
      if (!this.placedAt(id, positions)) unplaced.add(id);
      const owner = owners?.get(id);
      if (owner !== undefined) this.owners.set(id, owner);
    }
    this.search(unplaced);
    if (owners) return;
    for (const [worker, ids] of this.current)
      for (const id of ids) if (wanted.has(id)) this.owners.set(id, worker);
  }

  /** With both indexes given: searches only for the ids whose given position is wrong. */
  private learnMisplaced(lists: Iterable<Iterable<string>>, positions: MoveHistory["positions"]): void {
    const unplaced = new Set<string>();
    for (const ids of lists)
      for (const id of ids) if (!this.learned.has(id) && !this.placedAt(id, positions)) unplaced.add(id);
    for (const id of unplaced) this.learned.add(id);
    this.search(unplaced);
  }

  /** True when `positions` gives `id` its right index (kept in `indexes` unless the caller's index serves). */
  private placedAt(id: string, positions: MoveHistory["positions"]): boolean {
    const at = positions?.get(id);
    if (at === undefined || this.input.tasks[at]?.id !== id) return false;
    if (!this.hinted) this.indexes.set(id, at);
    return true;
  }

  /** One pass over the tasks for the ids no index placed. */
  private search(unplaced: ReadonlySet<string>): void {
    if (unplaced.size === 0) return;
    this.input.tasks.forEach((task, i) => {
      if (unplaced.has(task.id)) this.indexes.set(task.id, i);
    });
  }

  index(id: string): number | undefined {
    const at = this.hinted?.positions.get(id);
    if (at !== undefined && this.input.tasks[at]?.id === id) return at;
    return this.indexes.get(id);
  }

  task(id: string): Task | undefined {
    const i = this.index(id);
    return i === undefined ? undefined : this.input.tasks[i];
  }

  /** The current lists of `workers`. */
  currentOf(workers: Iterable<string>): Map<string, string[]> {
    const names = new Set(workers);
    return new Map(
      this.current.filter(([worker]) => names.has(worker)).map(([worker, ids]) => [worker, [...ids]]),
    );
  }
}

function groupBy<T>(items: readonly T[], keyOf: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    const group = groups.get(key);
    if (group) group.push(item);
    else groups.set(key, [item]);
  }
  return groups;
}
