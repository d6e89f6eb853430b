import type { Constraints, EligibilityClass } from "./constraints.js";
import type { Problem } from "./model.js";
import type { UnassignedReason } from "./types.js";

/** Where a unit may go: a class's workers, or (a key) those of every class of its tasks. */
export interface Eligibility {
  eligible: Uint8Array;
  /** The eligible workers, ascending. */
  workers: number[];
}

/**
 * What the constrained pass places as one — a task without a key, or all the tasks of a key — as flat
 * arrays indexed by unit number (a million units make no million objects for the collector to trace).
 * Units are numbered in priority order.
 */
export interface Units {
  count: number;
  /** The tasks of unit u, by priority: `list[first[u]]` up to `list[first[u + 1] - 1]`. */
  first: Int32Array;
  list: Int32Array;
  size: Float64Array;
  priority: Float64Array;
  /** Position of its first task in priority order (distinct per unit). */
  rank: Int32Array;
  /** Its eligibility, an index in `eligs` (a class number for a unit without a key). */
  elig: Int32Array;
  eligs: Eligibility[];
  /** Its distinct antiKey numbers, an index in `antiLists`, or -1 for none. */
  anti: Int32Array;
  antiLists: number[][];
  /** Its set (a task without a key), or -1 (a key). */
  set: Int32Array;
  /** Key number, or -1. */
  key: Int32Array;
  /** The worker that runs it now (for a key: most of its weight), or -1. */
  home: Int32Array;
  /** Where it is placed, or -1. */
  at: Int32Array;
}

const NO_ANTI: readonly number[] = [];

export const antiOf = (units: Units, u: number): readonly number[] =>
  units.anti[u] < 0 ? NO_ANTI : units.antiLists[units.anti[u]];

/**
 * The admitted constrained tasks as units in priority order; a unit that cannot go anywhere (no
 * eligible worker, a key whose selectors exclude each other or whose tasks share an antiKey, more
 * tasks of an antiKey in a set than it has workers or values) gets its reason here.
 */
export function unitsOf(
  problem: Problem,
  cons: Constraints,
  admitted: Uint8Array,
  reasons: Array<UnassignedReason | undefined>,
): { units: Units; keyLoad: Float64Array } {
  const W = problem.workers.length;
  const { order, key, weight, priority, holder } = problem;
  // Numbers the units and counts their tasks, then fills them in the same order.
  const keyUnit = new Int32Array(problem.keyCount).fill(-1);
  let count = 0;
  let taskCount = 0;
  for (let r = 0; r < order.length; r++) {
    const t = order[r];
    if (!cons.constrained[t] || !admitted[t]) continue;
    taskCount++;
    const k = key[t];
    if (k < 0) count++;
    else if (keyUnit[k] < 0) keyUnit[k] = count++;
  }
  // The unit of the task at rank r, in a pass over the same ranks: the next number, or its key's.
  let next = 0;
  const unitAt = (t: number) => {
    const u = key[t] >= 0 ? keyUnit[key[t]] : next;
    if (u === next) next++;
    return u;
  };
  const units: Units = {
    count,
    first: new Int32Array(count + 1),
    list: new Int32Array(taskCount),
    size: new Float64Array(count),
    priority: new Float64Array(count),
    rank: new Int32Array(count).fill(-1),
    elig: new Int32Array(count),
    eligs: cons.classes.slice(),
    anti: new Int32Array(count).fill(-1),
    antiLists: [],
    set: new Int32Array(count).fill(-1),
    key: new Int32Array(count).fill(-1),
    home: new Int32Array(count).fill(-1),
    at: new Int32Array(count).fill(-1),
  };
  const { first, list } = units;
  for (let r = 0; r < order.length; r++) {
    const t = order[r];
    if (cons.constrained[t] && admitted[t]) first[unitAt(t) + 1]++;
  }
  next = 0;
  for (let u = 0; u < count; u++) first[u + 1] += first[u];
  const filled = first.slice(0, count);
  const singleAnti: number[][] = [];
  const antiList = (a: number) => {
    if (singleAnti[a] === undefined) {
      singleAnti[a] = [a];
      units.antiLists.push(singleAnti[a]);
      antiIndex[a] = units.antiLists.length - 1;
    }
    return antiIndex[a];
  };
  const antiIndex: number[] = [];
  const antiTasks = new Map<number, { tasks: number[]; room: number; label?: string }>();
  const keyUnits: number[] = [];
  for (let r = 0; r < order.length; r++) {
    const t = order[r];
    if (!cons.constrained[t] || !admitted[t]) continue;
    const u = unitAt(t);
    list[filled[u]++] = t;
    units.size[u] += weight[t];
    if (units.rank[u] >= 0) continue;
    units.rank[u] = r;
    units.priority[u] = priority[t];
    const k = key[t];
    if (k >= 0) {
      units.key[u] = k;
      keyUnits.push(u);
      continue;
    }
    const s = cons.set[t];
    const set = cons.sets[s];
    const cls = cons.classes[set.cls];
    units.elig[u] = set.cls;
    units.set[u] = s;
    units.home[u] = holder[t];
    const a = cons.anti[t];
    if (a >= 0) units.anti[u] = antiList(a);
    if (cls.workers.length === 0) {
      reasons[t] = noMatch(cls);
      continue;
    }
    if (a >= 0) {
      // A set has fewer than 2^21 groups × classes; antiKeys fewer than 2^31 (see constraints.ts).
      const id = s * 2 ** 31 + a;
      let group = antiTasks.get(id);
      if (group === undefined) {
        const room = set.label === undefined ? cls.workers.length : set.values.length;
        group = { tasks: [], room, label: set.label };
        antiTasks.set(id, group);
      }
      group.tasks.push(t);
    }
  }
  for (const { tasks, room, label } of antiTasks.values()) {
    if (tasks.length <= room) continue;
    // The excess is the lowest priority; among equals, tasks already running stay (sticky).
    const kept = [...tasks].sort(
      (a, b) => priority[b] - priority[a] || Number(holder[b] >= 0) - Number(holder[a] >= 0),
    );
    const where = label === undefined ? `${room} eligible workers` : `${room} values of ${label}`;
    for (const t of kept.slice(room)) {
      const text = `antiKey ${cons.antiNames[cons.anti[t]]}: ${tasks.length} tasks, ${where}`;
      reasons[t] = { kind: "antiKey", text };
    }
  }
  const keyEligs = new Map<string, number>();
  for (const u of keyUnits) describeKey(problem, cons, units, u, W, keyEligs, reasons);
  return { units, keyLoad: new Float64Array(W) };
}

function noMatch(cls: EligibilityClass): UnassignedReason {
  const { text, failedOn } = cls;
  if (failedOn) return { kind: "failed", text: `failed on every eligible worker (${failedOn.join(", ")})` };
  return {
    kind: "selector",
    text: text.startsWith("label ") ? `no worker has ${text}` : `no worker matches ${text}`,
  };
}

/** A key's eligible workers (every class of its tasks; shared by keys of the same classes), antiKeys and home; its reason when it has none. */
function describeKey(
  problem: Problem,
  cons: Constraints,
  units: Units,
  u: number,
  W: number,
  keyEligs: Map<string, number>,
  reasons: Array<UnassignedReason | undefined>,
): void {
  const k = units.key[u];
  const name = problem.keyNames[k];
  const classNumbers = cons.keyClasses.get(k) ?? [];
  const classes = classNumbers.map((c) => cons.classes[c]);
  const signature = classNumbers.join(",");
  let elig = keyEligs.get(signature);
  if (elig === undefined) {
    const eligible = new Uint8Array(W).fill(1);
    for (const cls of classes) for (let w = 0; w < W; w++) eligible[w] &= cls.eligible[w];
    const workers: number[] = [];
    for (let w = 0; w < W; w++) if (eligible[w]) workers.push(w);
    units.eligs.push({ eligible, workers });
    elig = units.eligs.length - 1;
    keyEligs.set(signature, elig);
  }
  units.elig[u] = elig;
  const held = new Map<number, number>();
  const antiOfKey = new Map<number, number>();
  let reason: UnassignedReason | undefined;
  for (let i = units.first[u]; i < units.first[u + 1]; i++) {
    const t = units.list[i];
    const h = problem.holder[t];
    if (h >= 0) held.set(h, (held.get(h) ?? 0) + problem.weight[t]);
    const a = cons.anti[t];
    if (a < 0) continue;
    const other = antiOfKey.get(a);
    if (other !== undefined && !reason) {
      reason = {
        kind: "antiKey",
        text: `key ${name}: tasks ${problem.ids[other]} and ${problem.ids[t]} share antiKey ${cons.antiNames[a]}`,
      };
    }
    antiOfKey.set(a, t);
  }
  if (antiOfKey.size > 0) {
    units.antiLists.push([...antiOfKey.keys()]);
    units.anti[u] = units.antiLists.length - 1;
  }
  let home = -1;
  for (const [w, weight] of held) {
    if (home < 0 || weight > (held.get(home) as number) || (weight === held.get(home) && w < home)) home = w;
  }
  units.home[u] = home;
  const empty = classes.find((cls) => cls.workers.length === 0);
  if (empty) reason = noMatch(empty);
  else if (units.eligs[elig].workers.length === 0) {
    reason = {
      kind: "key",
      text: `key ${name}: no worker matches all of its selectors (${classes.map((c) => c.text).join("; ")})`,
    };
  }
  if (reason) for (let i = units.first[u]; i < units.first[u + 1]; i++) reasons[units.list[i]] = reason;
}

export function antiReason(units: Units, u: number, cons: Constraints): UnassignedReason {
  const a = antiOf(units, u)[0];
  let tasks = 0;
  for (let other = 0; other < units.count; other++)
    if (antiOf(units, other).includes(a)) tasks += units.first[other + 1] - units.first[other];
  const s = units.set[u];
  const set = s >= 0 ? cons.sets[s] : undefined;
  const workers = units.eligs[units.elig[u]].workers.length;
  const where = set?.label
    ? `${set.values.length} values of ${set.label}`
    : `${workers} eligible worker${workers === 1 ? "" : "s"}`;
  return { kind: "antiKey", text: `antiKey ${cons.antiNames[a]}: ${tasks} tasks, ${where}` };
}

export function capacityReason(units: Units, u: number, cons: Constraints): UnassignedReason {
  const s = units.set[u];
  const text = s >= 0 ? cons.classes[cons.sets[s].cls].text : undefined;
  const which = text && text !== "any" ? ` matching ${text}` : "";
  const workers = units.eligs[units.elig[u]].workers.length;
  return { kind: "capacity", text: `capacity: no room on the ${workers} workers${which}` };
}
