import type { Constraints } from "./constraints.js";
import type { Problem } from "../../../../src/balancer/model.js";
import type { UnassignedReason } from "../../../../src/balancer/types.js";

const NO_ANTI: number[] = [];

/** What the constrained pass places as one: a task without a key, or all the tasks of a key. */
export interface Unit {
  tasks: number[];
  size: number;
  priority: number;
  /** Position in priority order (lower first). */
  rank: number;
  eligible: Uint8Array;
  /** The eligible workers, ascending. */
  workers: number[];
  /** Distinct antiKey numbers of its tasks. */
  anti: number[];
  /** Its set (a task without a key), or -1 (a key). */
  set: number;
  /** Key number, or -1. */
  key: number;
  /** The worker that runs it now (for a key: most of its weight), or -1. */
  home: number;
  /** Where it is placed, or -1. */
  at: number;
}

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
): { units: Unit[]; keyLoad: Float64Array } {
  const W = problem.workers.length;
  const units: Unit[] = [];
  const keyUnit = new Map<number, Unit>();
  const antiCount = new Map<string, number>();
  const antiTasks = new Map<string, { tasks: number[]; room: number; label?: string }>();
  problem.order.forEach((t, rank) => {
    if (!cons.constrained[t] || !admitted[t]) return;
    const k = problem.key[t];
    if (k >= 0) {
      const known = keyUnit.get(k);
      if (known) {
        known.tasks.push(t);
        known.size += problem.weight[t];
        return;
      }
      const unit: Unit = {
        tasks: [t],
        size: problem.weight[t],
        priority: problem.priority[t],
        rank,
        eligible: new Uint8Array(0),
        workers: [],
        anti: [],
        set: -1,
        key: k,
        home: -1,
        at: -1,
      };
      keyUnit.set(k, unit);
      units.push(unit);
      return;
    }
    const set = cons.sets[cons.set[t]];
    const cls = cons.classes[set.cls];
    const unit: Unit = {
      tasks: [t],
      size: problem.weight[t],
      priority: problem.priority[t],
      rank,
      eligible: cls.eligible,
      workers: cls.workers,
      anti: cons.anti[t] >= 0 ? [cons.anti[t]] : NO_ANTI,
      set: cons.set[t],
      key: -1,
      home: problem.holder[t],
      at: -1,
    };
    units.push(unit);
    if (cls.workers.length === 0) {
      reasons[t] = noMatch(cls.text);
      return;
    }
    if (cons.anti[t] >= 0) {
      const id = `${cons.set[t]}\u0000${cons.anti[t]}`;
      const count = (antiCount.get(id) ?? 0) + 1;
      antiCount.set(id, count);
      const room = set.label === undefined ? cls.workers.length : set.values.length;
      const group = antiTasks.get(id) ?? { tasks: [], room, label: set.label };
      group.tasks.push(t);
      antiTasks.set(id, group);
    }
  });
  for (const [id, { tasks, room, label }] of antiTasks) {
    if (tasks.length <= room) continue;
    // The excess is the lowest priority; among equals, tasks already running stay (sticky).
    const kept = [...tasks].sort(
      (a, b) =>
        problem.priority[b] - problem.priority[a] ||
        Number(problem.holder[b] >= 0) - Number(problem.holder[a] >= 0),
    );
    const where = label === undefined ? `${room} eligible workers` : `${room} values of ${label}`;
    for (const t of kept.slice(room)) {
      const text = `antiKey ${cons.antiNames[cons.anti[t]]}: ${antiCount.get(id)} tasks, ${where}`;
      reasons[t] = { kind: "antiKey", text };
    }
  }
  for (const unit of keyUnit.values()) describeKey(problem, cons, unit, W, reasons);
  return { units, keyLoad: new Float64Array(W) };
}

function noMatch(text: string): UnassignedReason {
  return {
    kind: "selector",
    text: text.startsWith("label ") ? `no worker has ${text}` : `no worker matches ${text}`,
  };
}

/** A key's eligible workers (every class of its tasks), antiKeys and home; its reason when it has none. */
function describeKey(
  problem: Problem,
  cons: Constraints,
  unit: Unit,
  W: number,
  reasons: Array<UnassignedReason | undefined>,
): void {
  const name = problem.keyNames[unit.key];
  const classes = (cons.keyClasses.get(unit.key) ?? []).map((c) => cons.classes[c]);
  const eligible = new Uint8Array(W).fill(1);
  for (const cls of classes) for (let w = 0; w < W; w++) eligible[w] &= cls.eligible[w];
  unit.eligible = eligible;
  unit.workers = [];
  for (let w = 0; w < W; w++) if (eligible[w]) unit.workers.push(w);
  const held = new Map<number, number>();
  const antiOf = new Map<number, number>();
  let reason: UnassignedReason | undefined;
  for (const t of unit.tasks) {
    const h = problem.holder[t];
    if (h >= 0) held.set(h, (held.get(h) ?? 0) + problem.weight[t]);
    const a = cons.anti[t];
    if (a < 0) continue;
    const other = antiOf.get(a);
    if (other !== undefined && !reason) {
      reason = {
        kind: "antiKey",
        text: `key ${name}: tasks ${problem.ids[other]} and ${problem.ids[t]} share antiKey ${cons.antiNames[a]}`,
      };
    }
    antiOf.set(a, t);
  }
  unit.anti = [...antiOf.keys()];
  for (const [w, weight] of held) {
    if (
      unit.home < 0 ||
      weight > (held.get(unit.home) as number) ||
      (weight === held.get(unit.home) && w < unit.home)
    )
      unit.home = w;
  }
  const empty = classes.find((cls) => cls.workers.length === 0);
  if (empty) reason = noMatch(empty.text);
  else if (unit.workers.length === 0) {
    reason = {
      kind: "key",
      text: `key ${name}: no worker matches all of its selectors (${classes.map((c) => c.text).join("; ")})`,
    };
  }
  if (reason) for (const t of unit.tasks) reasons[t] = reason;
}

export function antiReason(u: Unit, cons: Constraints, units: Unit[]): UnassignedReason {
  const a = u.anti[0];
  let tasks = 0;
  for (const other of units) if (other.anti.includes(a)) tasks += other.tasks.length;
  const set = u.set >= 0 ? cons.sets[u.set] : undefined;
  const where = set?.label
    ? `${set.values.length} values of ${set.label}`
    : `${u.workers.length} eligible worker${u.workers.length === 1 ? "" : "s"}`;
  return { kind: "antiKey", text: `antiKey ${cons.antiNames[a]}: ${tasks} tasks, ${where}` };
}

export function capacityReason(u: Unit, cons: Constraints): UnassignedReason {
  const text = u.set >= 0 ? cons.classes[cons.sets[u.set].cls].text : undefined;
  const which = text && text !== "any" ? ` matching ${text}` : "";
  return { kind: "capacity", text: `capacity: no room on the ${u.workers.length} workers${which}` };
}
