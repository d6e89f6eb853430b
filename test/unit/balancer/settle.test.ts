import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type Plan, plan, settleMoves, type Task } from "../../../src/balancer/index.js";
import { settleMoves as referenceSettleMoves } from "./reference/settle.js";
import { runs, scenarios, workerName } from "./support.js";

/** worker → group/weight class → how many tasks (the quantities balance and capacity depend on). */
function classCounts(result: Plan, tasks: Task[]): Map<string, number> {
  const byId = new Map(tasks.map((task) => [task.id, task]));
  const counts = new Map<string, number>();
  for (const [worker, ids] of Object.entries(result.assignment)) {
    for (const id of ids) {
      const task = byId.get(id) as Task;
      const kind = `${worker}|${task.group ?? ""}|${task.weight ?? 1}|${task.key ?? "-"}`;
      counts.set(kind, (counts.get(kind) ?? 0) + 1);
    }
  }
  return counts;
}

function diffOf(result: Plan, current: Record<string, string[]>) {
  const add: Record<string, string[]> = {};
  for (const [worker, ids] of Object.entries(result.assignment)) {
    const added = ids.filter((id) => !(current[worker] ?? []).includes(id));
    if (added.length > 0) add[worker] = added;
  }
  return add;
}

describe("settleMoves", () => {
  it("keeps every quantity of the plan: per worker and class counts, keyed placements, moves, unassigned; its diff matches its assignment", () => {
    fc.assert(
      fc.property(
        scenarios({ maxWorkers: 6, maxTasks: 40, groups: 2, keys: 3, maxWeight: 2, priorities: 2 }),
        fc.array(fc.nat(1000), { minLength: 50, maxLength: 50 }),
        (scenario, noise) => {
          const planned = plan(scenario);
          const history = {
            moves: new Map(scenario.tasks.map((task, i) => [task.id, noise[i % noise.length] % 4])),
            joinedAt: new Map(scenario.workers.map((w, i) => [workerName(w), noise[(i * 7) % noise.length]])),
          };
          const settled = settleMoves(planned, scenario, history);
          expect(classCounts(settled, scenario.tasks)).toEqual(classCounts(planned, scenario.tasks));
          expect(settled.moved).toBe(planned.moved);
          expect(settled.unassigned).toEqual(planned.unassigned);
          const keyed = (p: Plan) =>
            Object.entries(p.assignment).map(([w, ids]) => [
              w,
              ids.filter((id) => scenario.tasks.find((t) => t.id === id)?.key !== undefined),
            ]);
          expect(keyed(settled)).toEqual(keyed(planned));
          expect(diffOf(settled, scenario.current)).toEqual({ ...settled.add });
          const placed = Object.values(settled.assignment).flat().sort();
          expect(placed).toEqual(Object.values(planned.assignment).flat().sort());
          // Exactly the tasks that move are added somewhere and removed from their old worker.
          const movedIn = Object.values(settled.add)
            .flat()
            .filter((id) => Object.values(scenario.current).some((ids) => ids.includes(id)));
          const stillPlaced = new Set(placed);
          expect(movedIn.length).toBe(
            Object.values(planned.add)
              .flat()
              .filter((id) => Object.values(scenario.current).some((ids) => ids.includes(id))).length,
          );
          for (const id of movedIn) expect(stillPlaced.has(id)).toBe(true);
          // Every list in the planner's order (priority, highest first, then input order), whether the
          // settling rebuilt it or kept the plan's.
          const at = new Map(scenario.tasks.map((task, i) => [task.id, i]));
          const rank = (id: string) => [-(scenario.tasks[at.get(id) ?? 0]?.priority ?? 0), at.get(id) ?? 0];
          const inOrder = (ids: string[]) =>
            [...ids].sort((a, b) => rank(a)[0] - rank(b)[0] || rank(a)[1] - rank(b)[1]);
          for (const ids of Object.values(settled.assignment)) expect(ids).toEqual(inOrder(ids));
          for (const ids of Object.values(settled.add)) expect(ids).toEqual(inOrder(ids));
          // Its removals match its assignment for every worker, those it did not rebuild included.
          const removals: Record<string, string[]> = {};
          for (const [worker, ids] of Object.entries(scenario.current ?? {})) {
            const kept = new Set(settled.assignment[worker] ?? []);
            const stale = [...new Set(ids.filter((id) => !kept.has(id)))];
            if (stale.length > 0) removals[worker] = stale;
          }
          expect({ ...settled.remove }).toEqual(removals);
        },
      ),
      runs(300),
    );
  });

  it("is deterministic", () => {
    fc.assert(
      fc.property(scenarios({ maxWorkers: 5, maxTasks: 30, groups: 2 }), (scenario) => {
        const history = { moves: new Map(), joinedAt: new Map() };
        expect(settleMoves(plan(scenario), scenario, history)).toEqual(
          settleMoves(plan(scenario), scenario, history),
        );
      }),
      runs(100),
    );
  });

  it("in a rolling update of 10 workers × 1,000 tasks (one joins, one old drains, repeat) no task moves more than twice", () => {
    const tasks: Task[] = Array.from({ length: 1000 }, (_, i) => ({ id: `task-${i}` }));
    const old = Array.from({ length: 10 }, (_, i) => `old-${i}`);
    let clock = 0;
    const joinedAt = new Map<string, number>(old.map((w) => [w, clock++]));
    const moves = new Map<string, number>();
    let workers = [...old];
    let current: Record<string, string[]> = {};
    const schedule = () => {
      const input = { workers, tasks, current };
      const settled = settleMoves(plan(input), input, { moves, joinedAt });
      const owner = new Map(Object.entries(current).flatMap(([w, ids]) => ids.map((id) => [id, w])));
      for (const [worker, ids] of Object.entries(settled.add)) {
        for (const id of ids) {
          if (owner.has(id) && owner.get(id) !== worker) moves.set(id, (moves.get(id) ?? 0) + 1);
        }
      }
      current = settled.assignment;
    };
    schedule();
    for (const [i, leaving] of old.entries()) {
      const fresh = `new-${i}`;
      joinedAt.set(fresh, clock++);
      workers = [...workers, fresh];
      schedule();
      workers = workers.filter((w) => w !== leaving);
      schedule();
      delete current[leaving];
    }
    const total = [...moves.values()].reduce((a, b) => a + b, 0);
    expect(Math.max(...moves.values())).toBeLessThanOrEqual(2);
    expect(Object.keys(current).sort()).toEqual(old.map((_, i) => `new-${i}`).sort());
    expect(total).toBeGreaterThanOrEqual(1000);
  });

  it("settles the same with the caller's indexes of the tasks and their owners (a wrong index is searched for)", () => {
    fc.assert(
      fc.property(
        scenarios({ maxWorkers: 6, maxTasks: 40, groups: 2, keys: 3, maxWeight: 2, priorities: 2 }),
        fc.array(fc.nat(1000), { minLength: 50, maxLength: 50 }),
        fc.nat(3),
        (scenario, noise, shift) => {
          const planned = plan(scenario);
          const history = {
            moves: new Map(scenario.tasks.map((task, i) => [task.id, noise[i % noise.length] % 4])),
            joinedAt: new Map(scenario.workers.map((w, i) => [workerName(w), noise[(i * 7) % noise.length]])),
          };
          // Owners as the last current list naming a task; indexes shifted for some, as a quarantine shifts them.
          const owners = new Map(
            Object.entries(scenario.current).flatMap(([w, ids]) => ids.map((id) => [id, w])),
          );
          const positions = new Map(scenario.tasks.map((task, i) => [task.id, i % 4 < shift ? i + 1 : i]));
          expect(settleMoves(planned, scenario, { ...history, positions, owners })).toEqual(
            settleMoves(planned, scenario, history),
          );
        },
      ),
      runs(200),
    );
  });
  it("settles exactly as before a donor's tasks were sorted by class once, the caller's indexes were copied, and donors whose chosen tasks never moved and lists left as planned were settled like the others (reference/settle.ts)", () => {
    fc.assert(
      fc.property(
        scenarios({ maxWorkers: 8, maxTasks: 60, groups: 4, keys: 3, maxWeight: 2, priorities: 2 }),
        fc.array(fc.nat(1000), { minLength: 50, maxLength: 50 }),
        fc.constantFrom("none", "positions", "owners", "both"),
        fc.nat(3),
        // How many tasks moved before: a join's donors mostly give tasks that never moved.
        fc.constantFrom("dense", "sparse", "never"),
        (scenario, noise, given, shift, moved) => {
          const planned = plan(scenario);
          const owners = new Map(
            Object.entries(scenario.current).flatMap(([w, ids]) => ids.map((id) => [id, w])),
          );
          // Some indexes shifted, as a quarantine shifts them: those are searched for.
          const positions = new Map(scenario.tasks.map((task, i) => [task.id, i % 4 < shift ? i + 1 : i]));
          const history = {
            moves: new Map(
              scenario.tasks.map((task, i) => {
                const draw = noise[i % noise.length];
                return [task.id, moved === "dense" ? draw % 4 : moved === "sparse" && draw % 5 === 0 ? 1 : 0];
              }),
            ),
            joinedAt: new Map(scenario.workers.map((w, i) => [workerName(w), noise[(i * 7) % noise.length]])),
            ...(given === "positions" || given === "both" ? { positions } : {}),
            ...(given === "owners" || given === "both" ? { owners } : {}),
          };
          expect(settleMoves(planned, scenario, history)).toEqual(
            referenceSettleMoves(planned, scenario, history),
          );
        },
      ),
      runs(500),
    );
  });

  it("settles a join's and a drain's rebalance exactly as the reference does, whichever tasks moved before", () => {
    fc.assert(
      fc.property(
        fc.record({
          tasks: fc.integer({ min: 10, max: 120 }),
          old: fc.integer({ min: 2, max: 6 }),
          joining: fc.integer({ min: 0, max: 3 }),
          draining: fc.boolean(),
          groups: fc.integer({ min: 1, max: 2 }),
        }),
        fc.array(fc.nat(1000), { minLength: 50, maxLength: 50 }),
        fc.constantFrom("dense", "sparse", "never"),
        ({ tasks: count, old, joining, draining, groups }, noise, moved) => {
          const tasks: Task[] = Array.from({ length: count }, (_, i) => ({
            id: `t${i}`,
            ...(groups > 1 ? { group: `g${i % groups}` } : {}),
          }));
          const olds = Array.from({ length: old }, (_, i) => `old-${i}`);
          const current: Record<string, string[]> = Object.fromEntries(olds.map((w) => [w, []]));
          tasks.forEach((task, i) => current[olds[i % old]].push(task.id));
          const fresh = Array.from({ length: joining }, (_, i) => `new-${i}`);
          const workers = [...(draining ? olds.slice(1) : olds), ...fresh];
          const input = { workers, tasks, current };
          const draw = (i: number) => noise[i % noise.length];
          const history = {
            moves: new Map(
              tasks.map((task, i) => [
                task.id,
                moved === "dense" ? draw(i) % 3 : moved === "sparse" && draw(i) % 4 === 0 ? 1 : 0,
              ]),
            ),
            joinedAt: new Map(workers.map((w, i) => [w, w.startsWith("new") ? 100 + draw(i) : i])),
          };
          const planned = plan(input);
          expect(settleMoves(planned, input, history)).toEqual(referenceSettleMoves(planned, input, history));
        },
      ),
      runs(500),
    );
  });
});
