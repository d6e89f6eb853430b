/** The rules of placement constraints, checked on one plan without the planner's help. */
import { expect } from "vitest";
import { type Plan, REASON_KINDS, type Task, type WorkerSpec } from "../../../src/balancer/index.js";
import {
  type ConstrainedScenario,
  eligible,
  labelsOf,
  ownerOf,
  spreadFeasible,
  spreadSets,
  valueCounts,
} from "./constraint-support.js";

/** Every rule of placement constraints, checked on one plan; `unlimited`: no worker has a capacity. */
export function expectConstraintsHold(input: ConstrainedScenario, result: Plan): void {
  const { workers, tasks } = input;
  const labels = labelsOf(workers);
  const spec = new Map(workers.map((w) => [w.name, w]));
  const owner = ownerOf(result);
  const byId = new Map(tasks.map((t) => [t.id, t]));
  // Each task once: on a worker or unassigned with a reason of a known kind.
  expect(owner.size + result.unassigned.length).toBe(tasks.length);
  expect(Object.keys(result.reasons).sort()).toEqual([...result.unassigned].sort());
  for (const reason of Object.values(result.reasons)) expect(REASON_KINDS).toContain(reason.kind);
  const load = new Map(workers.map((w) => [w.name, 0]));
  for (const [id, w] of owner) {
    const task = byId.get(id)!;
    load.set(w, load.get(w)! + (task.weight ?? 1));
    // A hard selector (and the spread's label) always holds.
    expect(eligible(task, labels.get(w)!), `${id} on ${w}`).toBe(true);
  }
  for (const w of workers)
    if (w.capacity !== undefined) expect(load.get(w.name)!).toBeLessThanOrEqual(w.capacity);
  // antiKey: distinct workers; with a spread, distinct values.
  const seen = new Set<string>();
  for (const [id, w] of owner) {
    const task = byId.get(id)!;
    if (!task.antiKey) continue;
    const place = task.spread ? `${task.spread.label}=${labels.get(w)![task.spread.label]}` : `worker ${w}`;
    for (const where of [`${task.antiKey} ${place}`, `${task.antiKey} worker ${w}`]) {
      expect(seen.has(where), `${id}: antiKey ${where} twice`).toBe(false);
    }
    seen.add(`${task.antiKey} ${place}`);
    if (task.spread) seen.add(`${task.antiKey} worker ${w}`);
  }
  // A key's tasks share a worker.
  const keyOwner = new Map<string, string>();
  for (const [id, w] of owner) {
    const key = byId.get(id)!.key;
    if (key === undefined) continue;
    expect(keyOwner.get(key) ?? w).toBe(w);
    keyOwner.set(key, w);
  }
  // Spread: a hard one always within maxSkew; a soft one whenever that is feasible (brute force).
  const unlimited = workers.every((w) => w.capacity === undefined);
  for (const set of spreadSets(tasks).values()) {
    const { maxSkew = 1, hard } = set[0].spread!;
    const counts = [...valueCounts(set, workers, result).values()];
    if (counts.length === 0) continue;
    const skew = Math.max(...counts) - Math.min(...counts);
    const placed = set.filter((t) => owner.has(t.id));
    if (hard || (unlimited && spreadFeasible(placed, counts.length, maxSkew))) {
      expect(skew, `spread of ${set[0].group}`).toBeLessThanOrEqual(maxSkew);
    }
  }
  for (const id of result.unassigned) expectTrueReason(byId.get(id)!, result, input, { owner, load, spec });
}

interface Facts {
  owner: Map<string, string>;
  load: Map<string, number>;
  spec: Map<string, WorkerSpec>;
}

function expectTrueReason(task: Task, result: Plan, input: ConstrainedScenario, facts: Facts): void {
  const { kind } = result.reasons[task.id];
  const live = input.workers.filter((w) => !w.cordoned);
  const keyTasks = task.key ? input.tasks.filter((t) => t.key === task.key) : [task];
  const fitsAll = (w: WorkerSpec) => keyTasks.every((t) => eligible(t, w.labels ?? {}));
  const size = keyTasks.reduce((sum, t) => sum + (t.weight ?? 1), 0);
  const holdsAnti = (w: WorkerSpec, t: Task) =>
    t.antiKey !== undefined &&
    input.tasks.some((other) => {
      const at = facts.owner.get(other.id);
      if (other.antiKey !== t.antiKey || at === undefined) return false;
      if (at === w.name) return true;
      const label = t.spread?.label;
      return (
        label !== undefined &&
        other.spread !== undefined &&
        facts.spec.get(at)!.labels![label] === w.labels![label]
      );
    });
  const why = `${task.id}: ${result.reasons[task.id].text}`;
  switch (kind) {
    case "selector":
      expect(
        keyTasks.some((t) => !live.some((w) => eligible(t, w.labels ?? {}))),
        why,
      ).toBe(true);
      break;
    case "key":
      expect(live.some(fitsAll), why).toBe(false);
      break;
    case "antiKey": {
      const inside = keyTasks.filter((t) => t.antiKey).map((t) => t.antiKey);
      if (new Set(inside).size < inside.length) break; // two tasks of the key share an antiKey
      // More tasks of the antiKey (in the task's set) than eligible workers, or values with a spread.
      const peers = input.tasks.filter(
        (t) =>
          t.antiKey === task.antiKey &&
          t.group === task.group &&
          JSON.stringify(t.selector) === JSON.stringify(task.selector) &&
          !t.spread === !task.spread,
      );
      const room = task.spread
        ? new Set(live.filter(fitsAll).map((w) => w.labels![task.spread!.label])).size
        : live.filter(fitsAll).length;
      if (peers.length > room) break;
      expect(
        live.filter(fitsAll).every((w) => keyTasks.some((t) => holdsAnti(w, t))),
        why,
      ).toBe(true);
      break;
    }
    case "capacity":
      for (const w of live.filter(fitsAll)) {
        if (keyTasks.some((t) => holdsAnti(w, t))) continue;
        expect(facts.load.get(w.name)! + size, `${why}, but ${w.name} has room`).toBeGreaterThan(
          w.capacity ?? Infinity,
        );
      }
      break;
    case "spread": {
      expect(task.spread?.hard, why).toBe(true);
      const set = spreadSets(input.tasks).get(`${task.group}|${JSON.stringify(task.selector ?? {})}`)!;
      const counts = valueCounts(set, input.workers, result);
      for (const [value, count] of counts) {
        const after = [...counts].map(([v, c]) => (v === value ? count + 1 : c));
        if (Math.max(...after) - Math.min(...after) <= (task.spread!.maxSkew ?? 1)) {
          const room = live.some(
            (w) =>
              eligible(task, w.labels ?? {}) &&
              w.labels!.zone === value &&
              facts.load.get(w.name)! + size <= (w.capacity ?? Infinity) &&
              !holdsAnti(w, task),
          );
          expect(room, `${why}, but ${value} could take it`).toBe(false);
        }
      }
      break;
    }
  }
}
