import { describe, expect, it } from "vitest";
import { plan } from "../../../src/balancer/index.js";
import { expectConsistent, movedIds, names, tasksOf } from "./support.js";

const counts = (assignment: Record<string, string[]>) => Object.values(assignment).map((ids) => ids.length);

describe("plan: the classic cases", () => {
  const thousand = tasksOf(1000);
  const ten = names("w", 10);
  const first = plan({ workers: ten, tasks: thousand });

  it("spreads 1,000 tasks over 10 workers 100 each", () => {
    expect(counts(first.assignment)).toEqual(Array(10).fill(100));
    expect(first.moved).toBe(0);
  });

  it("moves exactly 90 tasks, all to the newcomer, when an 11th worker joins", () => {
    const input = { workers: [...ten, "w10"], tasks: thousand, current: first.assignment };
    const next = plan(input);
    expectConsistent(input, next);
    expect(next.moved).toBe(90);
    expect(Object.keys(next.add)).toEqual(["w10"]);
    expect(next.add.w10).toHaveLength(90);
    expect(counts(next.assignment).sort()).toEqual([...Array(10).fill(91), 90].sort());
  });

  it("moves only the leaver's 100 tasks when a worker leaves 10 → 9", () => {
    const input = { workers: ten.slice(1), tasks: thousand, current: first.assignment };
    const next = plan(input);
    expectConsistent(input, next);
    expect(next.moved).toBe(100);
    expect(movedIds(first.assignment, next).sort()).toEqual([...first.assignment.w0].sort());
    expect(next.remove).toEqual({ w0: first.assignment.w0 });
  });

  it("moves 2 of 10 tasks when a 4th worker joins 3, leaving 3,3,2,2", () => {
    const tasks = tasksOf(10);
    const before = plan({ workers: ["a", "b", "c"], tasks });
    expect(counts(before.assignment).sort()).toEqual([3, 3, 4]);
    const after = plan({ workers: ["a", "b", "c", "d"], tasks, current: before.assignment });
    expect(after.moved).toBe(2);
    expect(after.add).toEqual({ d: expect.any(Array) });
    expect(counts(after.assignment).sort()).toEqual([2, 2, 3, 3]);
  });
});

describe("plan: weights and many groups", () => {
  it("with weights, an 11th worker receives its share and at most one more task per group moves", () => {
    const tasks = tasksOf(1000, (i) => ({ group: `g${i % 5}`, weight: 1 + (i % 4) }));
    const before = plan({ workers: names("w", 10), tasks });
    const after = plan({ workers: names("w", 11), tasks, current: before.assignment });
    const onto = after.add.w10.length;
    expect(onto).toBeGreaterThan(0);
    expect(after.moved - onto).toBeLessThanOrEqual(5);
  });

  it("with weights, a worker that leaves moves only its own tasks", () => {
    const tasks = tasksOf(1000, (i) => ({ group: `g${i % 5}`, weight: 1 + (i % 4) }));
    const before = plan({ workers: names("w", 10), tasks });
    const after = plan({ workers: names("w", 9, 1), tasks, current: before.assignment });
    expect(movedIds(before.assignment, after).sort()).toEqual([...before.assignment.w0].sort());
  });

  it("with 600 groups over 500 workers, a join moves only onto the newcomer and a leave only the leaver's tasks", () => {
    const tasks = tasksOf(4200, (i) => ({ group: `g${i % 600}` }));
    const before = plan({ workers: names("w", 500), tasks });
    const joined = plan({ workers: names("w", 501), tasks, current: before.assignment });
    expect(Object.keys(joined.add)).toEqual(["w500"]);
    expect(joined.moved).toBe(joined.add.w500.length);
    const left = plan({ workers: names("w", 499, 1), tasks, current: before.assignment });
    expect(movedIds(before.assignment, left).sort()).toEqual([...before.assignment.w0].sort());
  });
});

describe("plan: diff and order", () => {
  it("removes the tasks of gone workers and ids no longer generated, and adds what is new", () => {
    const input = {
      workers: ["a", "b"],
      tasks: tasksOf(4),
      current: { a: ["t0", "old"], gone: ["t1", "t2"] },
    };
    const result = plan(input);
    expectConsistent(input, result);
    expect(result.remove).toEqual({ a: ["old"], gone: ["t1", "t2"] });
    expect(result.moved).toBe(2);
    expect(result.assignment.a).toContain("t0");
  });

  it("lists additions and assignments by priority, highest first, then in task order", () => {
    const tasks = tasksOf(12, (i) => ({ priority: i % 3 }));
    const result = plan({ workers: ["a", "b"], tasks });
    for (const ids of [...Object.values(result.add), ...Object.values(result.assignment)]) {
      const priorities = ids.map((id) => tasks.find((t) => t.id === id)!.priority ?? 0);
      expect(priorities).toEqual([...priorities].sort((x, y) => y - x));
      const sameTop = ids.filter((id) => tasks.find((t) => t.id === id)!.priority === 2);
      expect(sameTop).toEqual([...sameTop].sort((x, y) => Number(x.slice(1)) - Number(y.slice(1))));
    }
  });

  it("returns records with every online worker, empty ones included", () => {
    const result = plan({ workers: ["a", "b", "c"], tasks: tasksOf(1) });
    expect(Object.keys(result.assignment)).toEqual(["a", "b", "c"]);
    expect(counts(result.assignment).sort()).toEqual([0, 0, 1]);
  });

  it("accepts current as a Map as well as a record", () => {
    const tasks = tasksOf(20);
    const first = plan({ workers: ["a", "b"], tasks });
    const asMap = new Map(Object.entries(first.assignment));
    expect(plan({ workers: ["a", "b", "c"], tasks, current: asMap })).toEqual(
      plan({ workers: ["a", "b", "c"], tasks, current: first.assignment }),
    );
  });

  it("plans nothing for no workers and no tasks, removing what ran", () => {
    expect(plan({ workers: [], tasks: [], current: { gone: ["x"] } })).toEqual({
      assignment: {},
      add: {},
      remove: { gone: ["x"] },
      unassigned: [],
      reasons: {},
      moved: 0,
    });
  });

  it("is deterministic: the same input, or the workers in another order, gives the same plan", () => {
    const tasks = tasksOf(500, (i) => ({ group: `g${i % 7}`, key: i % 5 === 0 ? `k${i % 40}` : undefined }));
    const workers = names("w", 13);
    const reversed = [...workers].reverse();
    const one = plan({ workers, tasks });
    expect(plan({ workers, tasks })).toEqual(one);
    expect(plan({ workers: reversed, tasks })).toEqual(one);
  });

  it("spreads the remainders of different groups over different workers", () => {
    const tasks = tasksOf(15, (i) => ({ group: `g${i % 5}` }));
    const result = plan({ workers: names("w", 5), tasks });
    expect(counts(result.assignment)).toEqual([3, 3, 3, 3, 3]);
  });

  it("places tasks without a key around keyed load: ceilings go to workers with less keyed load", () => {
    const tasks = [...tasksOf(3, () => ({ key: "heavy" })), ...tasksOf(5).map((t) => ({ id: `u${t.id}` }))];
    const result = plan({ workers: ["a", "b"], tasks });
    const heavy = result.assignment.a.includes("t0") ? "a" : "b";
    const light = heavy === "a" ? "b" : "a";
    expect(result.assignment[light].filter((id) => id.startsWith("u"))).toHaveLength(3);
    expect(result.assignment[heavy].filter((id) => id.startsWith("u"))).toHaveLength(2);
  });
});

describe("plan: capacity", () => {
  it("leaves the lowest-priority tasks unassigned when capacity runs out", () => {
    const tasks = tasksOf(10, (i) => ({ priority: i }));
    const result = plan({
      workers: [
        { name: "a", capacity: 3 },
        { name: "b", capacity: 4 },
      ],
      tasks,
    });
    expect(result.unassigned.sort()).toEqual(["t0", "t1", "t2"]);
    expect(result.assignment.a).toHaveLength(3);
    expect(result.assignment.b).toHaveLength(4);
  });

  it("fills a small worker to its capacity and balances the rest among the others", () => {
    const tasks = tasksOf(30);
    const result = plan({ workers: [{ name: "a", capacity: 2 }, "b", "c"], tasks });
    expect(counts(result.assignment)).toEqual([2, 14, 14]);
  });

  it("keeps a key's tasks together or leaves them all unassigned", () => {
    const tasks = tasksOf(4, () => ({ key: "k" }));
    const result = plan({
      workers: [
        { name: "a", capacity: 3 },
        { name: "b", capacity: 3 },
      ],
      tasks,
    });
    expect(result.unassigned.sort()).toEqual(["t0", "t1", "t2", "t3"]);
  });
});
