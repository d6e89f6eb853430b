import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type Plan, plan, type Task, type WorkerSpec } from "../../../src/balancer/index.js";
import {
  type ConstrainedScenario,
  constrainedScenarios,
  domainOf,
  eligible,
  labelsOf,
  ownerOf,
  spreadSets,
  ZONES,
} from "./constraint-support.js";
import { expectConstraintsHold } from "./constraint-checks.js";
import { runs } from "./support.js";

/**
 * A lower bound on the moves from `before` to a plan over `workers`, computed without the planner:
 * every task that stays assigned but whose worker is gone or no longer matches must move; and per
 * spread set, the fewest tasks that must leave a value for the counts the plan places to fit in
 * maxSkew (brute force over every count vector), less those of them that the plan leaves unassigned.
 */
function movesLowerBound(
  tasks: readonly Task[],
  workers: readonly WorkerSpec[],
  before: Plan,
  after: Plan,
): number {
  const labels = labelsOf(workers);
  const was = ownerOf(before);
  const now = ownerOf(after);
  const stays = (t: Task) => {
    const w = was.get(t.id);
    return w !== undefined && labels.has(w) && eligible(t, labels.get(w)!);
  };
  let bound = tasks.filter((t) => was.has(t.id) && now.has(t.id) && !stays(t)).length;
  for (const set of spreadSets(tasks).values()) {
    const { label, maxSkew = 1 } = set[0].spread!;
    const values = domainOf(set, workers);
    if (values.length === 0) continue;
    const held = values.map(
      (v) => set.filter((t) => stays(t) && labels.get(was.get(t.id)!)![label] === v).length,
    );
    const placed = set.filter((t) => now.has(t.id)).length;
    let best = Number.POSITIVE_INFINITY;
    const visit = (prefix: number[], left: number) => {
      if (prefix.length === values.length - 1) {
        const x = [...prefix, left];
        if (Math.max(...x) - Math.min(...x) > maxSkew) return;
        best = Math.min(
          best,
          x.reduce((sum, xv, v) => sum + Math.max(0, held[v] - xv), 0),
        );
        return;
      }
      for (let xv = 0; xv <= left; xv++) visit([...prefix, xv], left - xv);
    };
    visit([], placed);
    // A task that leaves its value may also leave the plan (unassigned): that is not a move.
    const dropped = set.filter((t) => stays(t) && !now.has(t.id)).length;
    if (Number.isFinite(best)) bound += Math.max(0, best - dropped);
  }
  return bound;
}

const withoutZone = (s: ConstrainedScenario, zone: string): WorkerSpec[] =>
  s.workers.filter((w) => w.labels?.zone !== zone);

const relabelled = (s: ConstrainedScenario, index: number, zone: string): WorkerSpec[] =>
  s.workers.map((w, i) => (i === index % s.workers.length ? { ...w, labels: { ...w.labels, zone } } : w));

describe("plan with placement constraints: moves after a zone loss or a label change", () => {
  const scenario = constrainedScenarios({ maxWorkers: 7, maxTasks: 24 }).filter((s) =>
    s.tasks.every((t) => t.key === undefined),
  );

  it("a zone lost moves no more than the lower bound plus one per worker left, and the rules hold", () => {
    fc.assert(
      fc.property(scenario, fc.constantFrom(...ZONES), (s, zone) => {
        const before = plan(s);
        const workers = withoutZone(s, zone);
        fc.pre(workers.length > 0);
        const next = { workers, tasks: s.tasks, current: before.assignment };
        const after = plan(next);
        expectConstraintsHold(next, after);
        const bound = movesLowerBound(s.tasks, workers, before, after);
        expect(after.moved).toBeGreaterThanOrEqual(bound);
        expect(after.moved).toBeLessThanOrEqual(bound + workers.length);
      }),
      runs(200),
    );
  });

  it("a worker relabelled to another zone moves no more than the lower bound plus one per worker", () => {
    fc.assert(
      fc.property(scenario, fc.nat(), fc.constantFrom(...ZONES), (s, index, zone) => {
        const before = plan(s);
        const workers = relabelled(s, index, zone);
        const next = { workers, tasks: s.tasks, current: before.assignment };
        const after = plan(next);
        expectConstraintsHold(next, after);
        const bound = movesLowerBound(s.tasks, workers, before, after);
        expect(after.moved).toBeGreaterThanOrEqual(bound);
        expect(after.moved).toBeLessThanOrEqual(bound + workers.length);
      }),
      runs(200),
    );
  });
});
