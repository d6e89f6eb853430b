/**
 * Random labelled fleets with constrained tasks, and checks of the constraint rules written
 * independently of the planner (plain loops and brute force over small inputs).
 */
import fc from "fast-check";
import type { Plan, Selector, Task, WorkerSpec } from "../../../src/balancer/index.js";
import { matches } from "../../../src/balancer/labels.js";

export const ZONES = ["a", "b", "c"];
const SELECTORS: Selector[] = [
  { zone: "a" },
  { zone: ["a", "b"] },
  { zone: { notIn: ["c"] } },
  { gpu: { exists: true } },
  { gpu: { exists: false } },
  { zone: "z" },
];

export interface ConstrainedScenario {
  workers: WorkerSpec[];
  tasks: Task[];
  current: Record<string, string[]>;
}

export interface ConstrainedShape {
  maxWorkers: number;
  maxTasks: number;
  capacities?: boolean;
  keys?: boolean;
}

/**
 * Workers in zones a–c (some with no zone, some with a gpu), tasks in 3 groups with optional
 * selectors, a spread by zone per group (soft or hard), antiKeys within one spread set, keys, priorities;
 * and a random current assignment (including gone workers).
 */
export function constrainedScenarios(shape: ConstrainedShape): fc.Arbitrary<ConstrainedScenario> {
  const worker = fc.record({
    zone: fc.option(fc.constantFrom(...ZONES), { freq: 6 }),
    gpu: fc.boolean(),
    capacity: shape.capacities
      ? fc.option(fc.integer({ min: 0, max: 6 }), { nil: undefined })
      : fc.constant(undefined),
  });
  const spread = fc.option(fc.record({ maxSkew: fc.integer({ min: 1, max: 2 }), hard: fc.boolean() }), {
    freq: 2,
  });
  const task = fc.record({
    group: fc.integer({ min: 0, max: 2 }),
    selector: fc.option(fc.integer({ min: 0, max: SELECTORS.length - 1 }), { freq: 2 }),
    spreads: fc.boolean(),
    antiKey: fc.option(fc.integer({ min: 0, max: 1 }), { freq: 2 }),
    key: shape.keys ? fc.option(fc.integer({ min: 0, max: 3 }), { freq: 3 }) : fc.constant(null),
    priority: fc.integer({ min: 0, max: 2 }),
    weight: shape.capacities ? fc.integer({ min: 1, max: 2 }) : fc.constant(1),
    holder: fc.integer({ min: -1, max: shape.maxWorkers + 1 }),
  });
  return fc
    .record({
      workers: fc.array(worker, { minLength: 1, maxLength: shape.maxWorkers }),
      spreads: fc.array(spread, { minLength: 3, maxLength: 3 }),
      tasks: fc.array(task, { maxLength: shape.maxTasks }),
    })
    .map(({ workers, spreads, tasks }) => {
      const specs: WorkerSpec[] = workers.map((w, i) => ({
        name: `w${i}`,
        ...(w.capacity === undefined ? {} : { capacity: w.capacity }),
        labels: { ...(w.zone ? { zone: w.zone } : {}), ...(w.gpu ? { gpu: "true" } : {}) },
      }));
      const current: Record<string, string[]> = {};
      const generated = tasks.map((t, i): Task => {
        const out: Task = { id: `t${i}`, group: `g${t.group}`, priority: t.priority, weight: t.weight };
        if (t.selector !== null) out.selector = SELECTORS[t.selector];
        const groupSpread = spreads[t.group];
        if (t.key !== null) out.key = `k${t.key}`;
        else if (groupSpread && t.spreads) out.spread = { label: "zone", ...groupSpread };
        // Replicas share their constraints: an antiKey never spans two spread sets.
        if (t.antiKey !== null)
          out.antiKey = `g${t.group}-s${t.selector}-${out.spread ? "spread" : "plain"}-x${t.antiKey}`;
        if (t.holder >= 0) (current[`w${t.holder}`] ??= []).push(out.id);
        return out;
      });
      return { workers: specs, tasks: generated, current };
    });
}

export const labelsOf = (workers: readonly WorkerSpec[]) =>
  new Map(workers.map((w) => [w.name, w.labels ?? {}]));

/** Whether `task` may run on a worker with `labels`: its selector matches, and it has the spread's label. */
export function eligible(task: Task, labels: Record<string, string>): boolean {
  if (task.selector && !matches(task.selector, labels)) return false;
  return !task.spread || Object.hasOwn(labels, task.spread.label);
}

export function ownerOf(result: Plan): Map<string, string> {
  const owner = new Map<string, string>();
  for (const [worker, ids] of Object.entries(result.assignment)) for (const id of ids) owner.set(id, worker);
  return owner;
}

/** A spread set: the tasks of one group with one selector carrying one spread. */
export function spreadSets(tasks: readonly Task[]): Map<string, Task[]> {
  const sets = new Map<string, Task[]>();
  for (const task of tasks) {
    if (!task.spread) continue;
    const id = `${task.group}|${JSON.stringify(task.selector ?? {})}`;
    sets.set(id, [...(sets.get(id) ?? []), task]);
  }
  return sets;
}

/** The values of the spread label on the workers eligible for the set's tasks. */
export function domainOf(set: readonly Task[], workers: readonly WorkerSpec[]): string[] {
  const label = set[0].spread!.label;
  const values = new Set<string>();
  for (const w of workers) if (!w.cordoned && eligible(set[0], w.labels ?? {})) values.add(w.labels![label]);
  return [...values].sort();
}

/** Per domain value, how many of the set's tasks the plan puts there. */
export function valueCounts(
  set: readonly Task[],
  workers: readonly WorkerSpec[],
  result: Plan,
): Map<string, number> {
  const label = set[0].spread!.label;
  const labels = labelsOf(workers);
  const owner = ownerOf(result);
  const counts = new Map(domainOf(set, workers).map((v) => [v, 0]));
  for (const task of set) {
    const w = owner.get(task.id);
    if (w !== undefined) counts.set(labels.get(w)![label], (counts.get(labels.get(w)![label]) ?? 0) + 1);
  }
  return counts;
}

/**
 * Brute force: can these tasks of a set be put on the domain's values within maxSkew, with the
 * tasks of one antiKey on distinct values (capacity unlimited)?
 */
export function spreadFeasible(placed: readonly Task[], values: number, maxSkew: number): boolean {
  const count = placed.length;
  const antiSizes = new Map<string, number>();
  for (const task of placed)
    if (task.antiKey) antiSizes.set(task.antiKey, (antiSizes.get(task.antiKey) ?? 0) + 1);
  if ([...antiSizes.values()].some((size) => size > values)) return false;
  // Every vector of counts within the skew that sums to `count`; with antiKey groups, check the
  // Gale–Ryser condition for a 0-1 matrix (groups × values) with those column sums.
  const plain = count - [...antiSizes.values()].reduce((a, b) => a + b, 0);
  const rows = [...antiSizes.values(), ...Array(plain).fill(1)].sort((a, b) => b - a);
  const vectors = (left: number, n: number): number[][] =>
    n === 0
      ? left === 0
        ? [[]]
        : []
      : Array.from({ length: left + 1 }, (_, x) =>
          vectors(left - x, n - 1).map((rest) => [x, ...rest]),
        ).flat();
  return vectors(count, values).some((columns) => {
    if (Math.max(...columns) - Math.min(...columns) > maxSkew) return false;
    for (let k = 1; k <= rows.length; k++) {
      const top = rows.slice(0, k).reduce((a, b) => a + b, 0);
      const bound = columns.reduce((sum, c) => sum + Math.min(c, k), 0);
      if (top > bound) return false;
    }
    return true;
  });
}
