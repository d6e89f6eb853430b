import type { Plan, PlanInput, Task } from "./types.js";

/** What the caller remembers of earlier plans. */
export interface MoveHistory {
  /** Task id → how often it moved between workers so far (absent: never). */
  moves: ReadonlyMap<string, number>;
  /** Worker name → when it joined, in any increasing unit (the master uses etcd revisions); higher is younger. */
  joinedAt: ReadonlyMap<string, number>;
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
  const tasks = new Map<string, { task: Task; index: number }>();
  input.tasks.forEach((task, index) => tasks.set(task.id, { task, index }));
  const excluded = new Set(
    input.exclude instanceof Map ? input.exclude.keys() : Object.keys(input.exclude ?? {}),
  );
  const classOf = (id: string): string | undefined => {
    const entry = tasks.get(id);
    if (!entry || entry.task.key !== undefined || isConstrained(entry.task) || excluded.has(id))
      return undefined;
    return `${entry.task.group ?? ""}\u0000${entry.task.weight ?? 1}`;
  };
  const current = currentLists(input);
  const owner = new Map<string, string>();
  for (const [worker, ids] of current) for (const id of ids) owner.set(id, worker);

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
  const assignment = new Map(Object.entries(plan.assignment).map(([w, ids]) => [w, new Set(ids)]));
  const finalMoves: Move[] = [];

  // Staying donors give the tasks that moved least, to the same destinations.
  for (const group of groupBy(staying, (m) => `${m.from}\u0000${classOf(m.id)}`).values()) {
    const { from } = group[0];
    const kind = classOf(group[0].id);
    const kept = [...(assignment.get(from) ?? [])].filter(
      (id) => classOf(id) === kind && owner.get(id) === from,
    );
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
  return rebuild(plan, current, assignment, tasks);
}

/** The plan's diff recomputed from the settled assignment, every list in the planner's order. */
function rebuild(
  plan: Plan,
  current: Map<string, string[]>,
  assignment: Map<string, Set<string>>,
  tasks: Map<string, { task: Task; index: number }>,
): Plan {
  const rank = (id: string) => tasks.get(id) as { task: Task; index: number };
  const order = (a: string, b: string) =>
    (rank(b).task.priority ?? 0) - (rank(a).task.priority ?? 0) || rank(a).index - rank(b).index;
  const result: Plan = {
    assignment: Object.create(null),
    add: Object.create(null),
    remove: Object.create(null),
    unassigned: plan.unassigned,
    reasons: plan.reasons,
    moved: plan.moved,
  };
  const target = new Map<string, string>();
  for (const [worker, ids] of assignment) {
    result.assignment[worker] = [...ids].sort(order);
    for (const id of ids) target.set(id, worker);
  }
  for (const [worker, ids] of Object.entries(result.assignment)) {
    const held = new Set(current.get(worker) ?? []);
    const added = ids.filter((id) => !held.has(id));
    if (added.length > 0) result.add[worker] = added;
  }
  for (const [worker, ids] of current) {
    const stale = ids.filter((id) => target.get(id) !== worker);
    if (stale.length > 0) result.remove[worker] = [...new Set(stale)];
  }
  return result;
}

/** A task with a constraint is not interchangeable with its group's others. */
function isConstrained(task: Task): boolean {
  return task.selector !== undefined || task.spread !== undefined || task.antiKey !== undefined;
}

function currentLists(input: PlanInput): Map<string, string[]> {
  const entries =
    input.current instanceof Map
      ? [...input.current.entries()]
      : Object.entries((input.current ?? {}) as Record<string, readonly string[]>);
  return new Map(entries.map(([worker, ids]) => [worker, [...ids]]));
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
