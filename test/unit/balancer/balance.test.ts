import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { plan } from "../../../src/balancer/index.js";
import type { Task } from "../../../src/balancer/types.js";
import {
  type Current,
  expectConsistent,
  fewestMoves,
  loads,
  movedIds,
  names,
  runs,
  scenarios,
  spread,
  workerName,
} from "./support.js";

const unkeyed = (task: Task) => task.key === undefined;

/** Per group and in total, unkeyed loads differ by at most `bound` between any two workers. */
function expectBalanced(
  tasks: Task[],
  result: ReturnType<typeof plan>,
  bound: (group: string) => number,
): void {
  for (const [group, perWorker] of loads(tasks, result, unkeyed)) {
    expect(spread(perWorker.values()), `group ${group}`).toBeLessThanOrEqual(bound(group) + 1e-9);
  }
}

type Event =
  | { kind: "join" }
  | { kind: "leave"; which: number }
  | { kind: "add"; count: number; group: number }
  | { kind: "drop"; which: number[] };

const events = (groups: number) =>
  fc.array(
    fc.oneof(
      fc.constant<Event>({ kind: "join" }),
      fc.record({ kind: fc.constant("leave" as const), which: fc.nat() }),
      fc.record({
        kind: fc.constant("add" as const),
        count: fc.integer({ min: 1, max: 4 }),
        group: fc.nat(groups - 1),
      }),
      fc.record({
        kind: fc.constant("drop" as const),
        which: fc.array(fc.nat(), { minLength: 1, maxLength: 3 }),
      }),
    ),
    { minLength: 1, maxLength: 6 },
  );

/** Applies one fleet or task-set change. */
function apply(event: Event, workers: string[], tasks: Task[], serial: { next: number }): [string[], Task[]] {
  switch (event.kind) {
    case "join":
      return [[...workers, `n${serial.next++}`], tasks];
    case "leave":
      return workers.length > 1
        ? [workers.filter((_, i) => i !== event.which % workers.length), tasks]
        : [workers, tasks];
    case "add":
      return [
        workers,
        [
          ...tasks,
          ...Array.from({ length: event.count }, () => ({
            id: `a${serial.next++}`,
            group: `g${event.group}`,
          })),
        ],
      ];
    case "drop": {
      const gone = new Set(event.which.map((i) => (tasks.length ? i % tasks.length : -1)));
      return [workers, tasks.filter((_, i) => !gone.has(i))];
    }
  }
}

describe("unkeyed tasks of weight 1", () => {
  it("every task lands once, and per group and in total any two workers differ by at most one", () => {
    fc.assert(
      fc.property(scenarios({ maxWorkers: 12, maxTasks: 120, groups: 5, priorities: 3 }), (input) => {
        const result = plan(input);
        expectConsistent(input, result);
        expect(result.unassigned).toEqual([]);
        expectBalanced(input.tasks, result, () => 1);
      }),
      runs(150),
    );
  });

  it("moves exactly as many tasks as the best balanced target needs, from any current assignment", () => {
    fc.assert(
      fc.property(scenarios({ maxWorkers: 5, maxTasks: 18, groups: 3 }), (input) => {
        const result = plan(input);
        const workers = input.workers.map(workerName);
        expect(result.moved).toBe(fewestMoves(workers, input.tasks, input.current));
        expect(movedIds(input.current, result)).toHaveLength(result.moved);
      }),
      runs(300),
    );
  });

  it("through joins, leaves and task changes, each step moves the fewest tasks the balance allows", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 0, max: 16 }),
        events(3),
        (start, count, steps) => {
          let workers = names("w", start);
          let tasks: Task[] = Array.from({ length: count }, (_, i) => ({ id: `t${i}`, group: `g${i % 3}` }));
          let current: Current = plan({ workers, tasks }).assignment;
          const serial = { next: 0 };
          for (const step of steps) {
            [workers, tasks] = apply(step, workers, tasks, serial);
            if (workers.length > 5) continue;
            const input = { workers, tasks, current };
            const result = plan(input);
            expectConsistent(input, result);
            expectBalanced(tasks, result, () => 1);
            expect(result.moved).toBe(fewestMoves(workers, tasks, current));
            current = result.assignment;
          }
        },
      ),
      runs(150),
    );
  });

  it("in one group, a change moves exactly the tasks above the new targets, ceilings kept by the fullest", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 0, max: 300 }),
        events(1),
        (start, count, steps) => {
          let workers = names("w", start);
          let tasks: Task[] = Array.from({ length: count }, (_, i) => ({ id: `t${i}` }));
          let current: Current = plan({ workers, tasks }).assignment;
          const serial = { next: 0 };
          for (const step of steps) {
            [workers, tasks] = apply(step, workers, tasks, serial);
            tasks = tasks.map(({ id }) => ({ id }));
            const result = plan({ workers, tasks, current });
            const alive = new Set(tasks.map((t) => t.id));
            const held = workers
              .map((w) => (current[w] ?? []).filter((id) => alive.has(id)).length)
              .sort((a, b) => b - a);
            const orphans = Object.entries(current)
              .filter(([w]) => !workers.includes(w))
              .flatMap(([, ids]) => ids)
              .filter((id) => alive.has(id)).length;
            const floor = Math.floor(tasks.length / workers.length);
            const ceilings = tasks.length - floor * workers.length;
            const excess = held.reduce(
              (sum, h, i) => sum + Math.max(0, h - floor - (i < ceilings ? 1 : 0)),
              0,
            );
            expect(result.moved).toBe(orphans + excess);
            current = result.assignment;
          }
        },
      ),
      runs(150),
    );
  });

  it("a worker that leaves moves only its own tasks (one group; with several, see the fewest-moves rule)", () => {
    fc.assert(
      fc.property(scenarios({ maxWorkers: 20, maxTasks: 300, groups: 1 }), fc.nat(), (input, which) => {
        fc.pre(input.workers.length > 1);
        const before = plan(input).assignment;
        const leaver = workerName(input.workers[which % input.workers.length]);
        const workers = input.workers.filter((w) => workerName(w) !== leaver);
        const result = plan({ workers, tasks: input.tasks, current: before });
        expect(movedIds(before, result).sort()).toEqual([...before[leaver]].sort());
      }),
      runs(150),
    );
  });

  it("with several groups a leave can force one more move to keep totals within one", () => {
    // w3 holds the only task of g0 and of g1; once w0 leaves, two ceilings on one worker break the totals.
    const tasks = [
      { id: "t0", group: "g0" },
      { id: "t1", group: "g1" },
      ...["t2", "t3", "t4"].map((id) => ({ id, group: "g3" })),
    ];
    const before = { w0: ["t2"], w1: ["t3"], w2: ["t4"], w3: ["t0", "t1"] };
    const workers = ["w1", "w2", "w3"];
    const result = plan({ workers, tasks, current: before });
    expect(result.moved).toBe(2);
    expect(fewestMoves(workers, tasks, before)).toBe(2);
  });

  it("adding tasks to a single group moves nothing that stays", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 15 }),
        fc.nat(200),
        fc.integer({ min: 1, max: 40 }),
        (n, count, more) => {
          const workers = names("w", n);
          const tasks: Task[] = Array.from({ length: count }, (_, i) => ({ id: `t${i}` }));
          const before = plan({ workers, tasks }).assignment;
          const grown = [...tasks, ...Array.from({ length: more }, (_, i) => ({ id: `new${i}` }))];
          expect(plan({ workers, tasks: grown, current: before }).moved).toBe(0);
        },
      ),
      runs(100),
    );
  });
});

describe("unkeyed tasks with weights", () => {
  it("per group loads differ by at most the group's largest weight, totals by the largest weight", () => {
    fc.assert(
      fc.property(
        scenarios({ maxWorkers: 8, maxTasks: 80, groups: 4, maxWeight: 6, priorities: 2 }),
        (input) => {
          const result = plan(input);
          expectConsistent(input, result);
          const largest = (group: string) =>
            Math.max(
              1,
              ...input.tasks.filter((t) => group === "*" || t.group === group).map((t) => t.weight ?? 1),
            );
          expectBalanced(input.tasks, result, largest);
        },
      ),
      runs(200),
    );
  });
});

describe("re-planning", () => {
  it("changes nothing when nothing changed: a plan is its own fixed point", () => {
    fc.assert(
      fc.property(
        scenarios({
          maxWorkers: 8,
          maxTasks: 80,
          groups: 4,
          keys: 6,
          maxWeight: 4,
          priorities: 2,
          maxCapacity: 30,
        }),
        (input) => {
          const first = plan(input);
          const again = plan({ ...input, current: first.assignment });
          expect(again.add).toEqual({});
          expect(again.remove).toEqual({});
          expect(again.assignment).toEqual(first.assignment);
        },
      ),
      runs(200),
    );
  });
});
