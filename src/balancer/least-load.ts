import { allocateCeilings } from "./ceilings.js";
import { ceilingAllowed, floorAt, type GroupBase, groupLevels, type Levels } from "./group-levels.js";
import { hashString } from "./hash.js";
import type { GroupTasks, Placement, Problem } from "./model.js";
import { placeWeightedGroups } from "./weighted.js";

/**
 * Per-group least-load placement of the tasks without a key, after the keyed ones.
 *
 * Groups whose tasks all weigh 1 are balanced exactly: every worker gets the floor of its group's
 * share plus at most one (a "ceiling"), every worker's total is within one of every other's, and the
 * ceilings go where they save the most moves (see ceilings.ts); ties go to workers with less keyed
 * load, then by a hash of the worker's name. Each worker keeps its highest-priority tasks up
 * to its target; only the rest move. Keyed load counts only as a tie-break and against capacity: the
 * "differ by at most one" rule is about tasks without a key.
 *
 * Weighted groups come next (weighted.ts).
 *
 * Constrained tasks (`fixed`, placed before) count where they are: a unit group's free tasks fill the
 * workers up to the group's level around them (group-levels.ts).
 *
 * Capacities: a worker that cannot take its share takes as much as it can and leaves the balance to
 * the others; what fits nowhere stays unplaced, lowest priority first.
 */
export function placeUnkeyed(
  problem: Problem,
  admitted: Uint8Array,
  out: Placement,
  fixed?: Uint8Array,
): void {
  const groups = collectGroups(problem, admitted);
  const unit = groups.filter((group) => group.unit);
  if (unit.length > 0) placeUnitGroups(problem, unit, out, fixed && basesOf(problem, unit, fixed, out));
  const weighted = groups.filter((group) => !group.unit);
  const largestWeight = weighted.reduce((largest, group) => Math.max(largest, group.largest), 1);
  if (weighted.length > 0) placeWeightedGroups(problem, weighted, largestWeight, out);
}

function collectGroups(problem: Problem, admitted: Uint8Array): GroupTasks[] {
  const byGroup: GroupTasks[] = [];
  for (const t of problem.order) {
    if (problem.key[t] >= 0 || !admitted[t]) continue;
    const g = problem.group[t];
    const weight = problem.weight[t];
    byGroup[g] ??= { group: g, tasks: [], unit: true, total: 0, largest: 0 };
    const entry = byGroup[g];
    entry.tasks.push(t);
    entry.total += weight;
    entry.largest = Math.max(entry.largest, weight);
    if (weight !== 1) entry.unit = false;
  }
  return byGroup.filter((entry) => entry !== undefined);
}

/** Per group, its placed constrained unit-weight tasks without a key per worker; undefined when none. */
function basesOf(
  problem: Problem,
  groups: GroupTasks[],
  fixed: Uint8Array,
  out: Placement,
): Array<GroupBase | undefined> | undefined {
  const poolOf = new Int32Array(problem.groupCount).fill(-1);
  groups.forEach((group, i) => {
    poolOf[group.group] = i;
  });
  let bases: Array<Map<number, number> | undefined> | undefined;
  for (let t = 0; t < fixed.length; t++) {
    const w = out.target[t];
    if (!fixed[t] || w < 0 || problem.key[t] >= 0 || problem.weight[t] !== 1) continue;
    const i = poolOf[problem.group[t]];
    if (i < 0) continue;
    bases ??= groups.map(() => undefined);
    const base = (bases[i] ??= new Map());
    base.set(w, (base.get(w) ?? 0) + 1);
  }
  return bases;
}

function placeUnitGroups(
  problem: Problem,
  groups: GroupTasks[],
  out: Placement,
  bases: Array<GroupBase | undefined> | undefined,
): void {
  const workerCount = problem.workers.length;
  const room = new Float64Array(workerCount);
  for (let w = 0; w < workerCount; w++) room[w] = Math.floor(problem.capacity[w] - out.load[w] + 1e-9);
  let pools = groups.map((group) => group.tasks);
  if (problem.hasCapacity) pools = dropBeyondRoom(problem, pools, room);
  const saturated = new Uint8Array(workerCount);
  let active = problem.workers.map((_, w) => w).filter((w) => room[w] >= 1);
  // Water-filling: a worker with no room for its fair share takes what it can and leaves the game.
  while (active.length > 0) {
    const levels = groupLevels(pools, bases, active);
    const need = (c: number) => levels.floors[c] + levels.lower[c];
    const short = active.filter((w, c) => room[w] < need(c));
    const exact = active.filter((w, c) => room[w] === need(c) && levels.extra[c]);
    const roomy = active.filter((w, c) => room[w] > need(c) && levels.extra[c]);
    const full = short.length > 0 ? short : roomy.length < levels.m ? exact : [];
    if (full.length === 0) break;
    for (const w of full) saturated[w] = 1;
    fillSaturated(problem, full, pools, (i, w) => floorAt(levels, i, w), room, out);
    pools = pools.map((tasks) => tasks.filter((t) => out.target[t] < 0));
    active = active.filter((w) => !saturated[w]);
  }
  if (active.length > 0) balance(problem, pools, active, room, out, groupLevels(pools, bases, active));
}

/** Leaves the lowest-priority tasks unplaced when the fleet has less room than there are tasks. */
function dropBeyondRoom(problem: Problem, pools: number[][], room: Float64Array): number[][] {
  const total = pools.reduce((sum, tasks) => sum + tasks.length, 0);
  let left = room.reduce((sum, r) => sum + Math.max(0, r), 0);
  if (left >= total) return pools;
  const inPool = new Uint8Array(problem.ids.length);
  for (const tasks of pools) for (const t of tasks) inPool[t] = 1;
  for (const t of problem.order) {
    if (!inPool[t]) continue;
    if (left > 0) left--;
    else inPool[t] = 0;
  }
  return pools.map((tasks) => tasks.filter((t) => inPool[t]));
}

/**
 * Gives each worker in `full` exactly its room: its own tasks first (highest priority first), then
 * round-robin over groups (at most one above a group's floor while that lasts), tasks nobody else holds first.
 */
function fillSaturated(
  problem: Problem,
  full: number[],
  pools: number[][],
  floorOf: (pool: number, worker: number) => number,
  room: Float64Array,
  out: Placement,
): void {
  const inFull = new Int32Array(problem.workers.length).fill(-1);
  full.forEach((w, i) => {
    inFull[w] = i;
  });
  const own: number[][] = full.map(() => []);
  const groupOf = new Int32Array(problem.ids.length);
  pools.forEach((tasks, i) => {
    for (const t of tasks) {
      groupOf[t] = i;
      const h = problem.holder[t];
      if (h >= 0 && inFull[h] >= 0) own[inFull[h]].push(t);
    }
  });
  const free = pools.map(() => 0);
  const taken = pools.map((tasks) => tasks.length - 1);
  const nextTask = (i: number): number => {
    const tasks = pools[i];
    while (free[i] < tasks.length) {
      const t = tasks[free[i]++];
      const h = problem.holder[t];
      if (out.target[t] < 0 && (h < 0 || inFull[h] >= 0)) return t;
    }
    while (taken[i] >= 0) {
      const t = tasks[taken[i]--];
      if (out.target[t] < 0) return t;
    }
    return -1;
  };
  const rank = new Int32Array(problem.ids.length);
  problem.order.forEach((t, position) => {
    rank[t] = position;
  });
  const left = full.map((w) => room[w]);
  const count = full.map(() => pools.map(() => 0));
  const give = (i: number, t: number) => {
    out.target[t] = full[i];
    out.load[full[i]] += 1;
    count[i][groupOf[t]]++;
    left[i]--;
  };
  full.forEach((_, i) => {
    own[i].sort((a, b) => rank[a] - rank[b]);
    for (const t of own[i]) if (left[i] > 0) give(i, t);
  });
  full.forEach((worker, i) => {
    const start = hashString(problem.workers[worker]) % pools.length;
    for (const capped of [true, false]) {
      for (let progress = true; left[i] > 0 && progress;) {
        progress = false;
        for (let j = 0; j < pools.length && left[i] > 0; j++) {
          const g = (start + j) % pools.length;
          if (capped && count[i][g] > floorOf(g, worker)) continue;
          const t = nextTask(g);
          if (t >= 0) {
            give(i, t);
            progress = true;
          }
        }
      }
    }
  });
}

/** The exact per-group and total balance over `active` workers, with the fewest moves. */
function balance(
  problem: Problem,
  pools: number[][],
  active: number[],
  room: Float64Array,
  out: Placement,
  levels: Levels,
): void {
  const columns = active.length;
  const column = new Int32Array(problem.workers.length).fill(-1);
  active.forEach((w, c) => {
    column[w] = c;
  });
  const columnOf = (t: number) => (problem.holder[t] >= 0 ? column[problem.holder[t]] : -1);
  const { remainder } = levels;
  const floorOf = (i: number, c: number) =>
    levels.base[i] ? floorAt(levels, i, active[c]) : levels.level[i];
  const workerHash = active.map((w) => hashString(problem.workers[w]));
  const preference = Int32Array.from(active, (_, c) => c).sort(
    (a, b) => out.keyedLoad[active[a]] - out.keyedLoad[active[b]] || workerHash[a] - workerHash[b] || a - b,
  );
  const rows: number[] = [];
  const rowOf = new Int32Array(pools.length).fill(-1);
  const beneficial: number[][] = [];
  const count = new Int32Array(columns);
  const blocked: number[][] = [];
  pools.forEach((tasks, i) => {
    if (remainder[i] === 0) return;
    for (const t of tasks) if (columnOf(t) >= 0) count[columnOf(t)]++;
    const holdsMore: number[] = [];
    for (const t of tasks) {
      const c = columnOf(t);
      if (c < 0) continue;
      if (count[c] > floorOf(i, c) && ceilingAllowed(levels, i, active[c])) holdsMore.push(c);
      count[c] = 0;
    }
    rowOf[i] = rows.push(i) - 1;
    beneficial.push(holdsMore);
    const above: number[] = [];
    for (const w of levels.base[i]?.keys() ?? []) if (!ceilingAllowed(levels, i, w)) above.push(column[w]);
    blocked.push(above);
  });
  const { floors, lower } = levels;
  const roomForExtra = Uint8Array.from(active, (w, c) =>
    room[w] > floors[c] + lower[c] && levels.extra[c] ? 1 : 0,
  );
  const ceilings = allocateCeilings({
    columns,
    remainder: rows.map((i) => remainder[i]),
    beneficial,
    preference,
    k: lower[0] ?? 0,
    m: levels.m,
    roomForExtra,
    ...(levels.based ? { lower, blocked, overflow: overflowRoom(active, room, levels, rows.length) } : {}),
  });
  const target = new Int32Array(columns);
  const kept = new Int32Array(columns);
  pools.forEach((tasks, i) => {
    target.fill(levels.level[i]);
    for (const w of levels.base[i]?.keys() ?? []) target[column[w]] = floorAt(levels, i, w);
    kept.fill(0);
    if (rowOf[i] >= 0) for (const c of ceilings[rowOf[i]]) target[c]++;
    const leftovers: number[] = [];
    for (const t of tasks) {
      const c = columnOf(t);
      if (c >= 0 && kept[c] < target[c]) {
        out.target[t] = active[c];
        out.load[active[c]] += 1;
        kept[c]++;
      } else {
        leftovers.push(t);
      }
    }
    let c = 0;
    for (const t of leftovers) {
      while (c < columns && kept[c] >= target[c]) c++;
      // Only where capacity left a ceiling without a worker (placeLeftovers places it where it fits).
      if (c === columns) break;
      out.target[t] = active[c];
      out.load[active[c]] += 1;
      kept[c]++;
    }
  });
}

/** Per column, the ceilings it has room for beyond its share (at most one per row). */
function overflowRoom(active: number[], room: Float64Array, levels: Levels, rows: number): Int32Array {
  return Int32Array.from(active, (w, c) => {
    const left = room[w] - levels.floors[c] - levels.lower[c] - levels.extra[c];
    return Math.max(0, Math.min(rows, left));
  });
}
