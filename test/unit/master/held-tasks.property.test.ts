import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { plan, type Task } from "../../../src/balancer/index.js";
import {
  decideHolds,
  type HoldFacts,
  maxDowntimeProblem,
  planAroundHolds,
} from "../../../src/master/held-tasks.js";
import type { HeldRecord } from "../../../src/node/index.js";

const NOW = Date.parse("2026-12-01T12:00:00.000Z");
const WORKERS = ["w1", "w2", "w3", "w4"];
const iso = (ms: number) => new Date(ms).toISOString();

/** Random facts: tasks (some keyed, some with a maxDowntime) listed on workers, some registered, records, left marks. */
const factsArbitrary: fc.Arbitrary<HoldFacts> = fc
  .record({
    delayMs: fc.constantFrom(0, 1_000, 30_000),
    tasks: fc.array(
      fc.record({
        key: fc.option(fc.constantFrom("k1", "k2"), { nil: undefined }),
        maxDowntime: fc.option(fc.constantFrom(0, 500, 1_000, 20_000, "1m"), { nil: undefined }),
        on: fc.option(fc.constantFrom(...WORKERS), { nil: undefined }),
        generated: fc.boolean(),
      }),
      { maxLength: 12 },
    ),
    registered: fc.subarray(WORKERS),
    left: fc.subarray(WORKERS),
    records: fc.dictionary(
      fc.constantFrom(...WORKERS),
      fc.record({
        sinceAgo: fc.integer({ min: 0, max: 40_000 }),
        length: fc.integer({ min: 0, max: 60_000 }),
      }),
    ),
  })
  .map((raw) => {
    const current = new Map<string, string[]>();
    const tasks = new Map<string, Task>();
    raw.tasks.forEach((t, i) => {
      const id = `t${i}`;
      if (t.on) current.set(t.on, [...(current.get(t.on) ?? []), id]);
      if (t.generated) tasks.set(id, { id, key: t.key, maxDowntime: t.maxDowntime });
    });
    const records = new Map<string, HeldRecord>(
      Object.entries(raw.records).map(([worker, r]) => [
        worker,
        { since: iso(NOW - r.sinceAgo), until: iso(NOW - r.sinceAgo + r.length) },
      ]),
    );
    return {
      nowMs: NOW,
      delayMs: raw.delayMs,
      registered: new Set(raw.registered),
      current,
      tasks,
      records,
      left: new Set(raw.left),
    };
  });

function downtimeMs(task: Task): number | undefined {
  return task.maxDowntime === "1m" ? 60_000 : (task.maxDowntime as number | undefined);
}

describe("decideHolds", () => {
  it("holds exactly the generated tasks of a crashed worker whose hold runs, that tolerate it, keys whole", () => {
    fc.assert(
      fc.property(factsArbitrary, (facts) => {
        const decision = decideHolds(facts);
        const listedOn = new Map<string, string>();
        for (const [worker, ids] of facts.current) for (const id of ids) listedOn.set(id, worker);
        for (const [worker, hold] of decision.holds) {
          expect(facts.registered.has(worker) || facts.left.has(worker)).toBe(false);
          expect(Date.parse(hold.until)).toBeGreaterThan(NOW);
          const record = facts.records.get(worker);
          if (record) expect({ since: hold.since, until: hold.until }).toEqual(record);
          else expect(hold).toMatchObject({ since: iso(NOW), until: iso(NOW + facts.delayMs) });
          expect(facts.delayMs > 0 || record !== undefined).toBe(true);
        }
        // The model: which tasks a worker's hold keeps, before keys are made whole.
        const holdable = (id: string): string | undefined => {
          const worker = listedOn.get(id);
          const task = facts.tasks.get(id);
          if (!worker || !task || facts.registered.has(worker) || facts.left.has(worker)) return undefined;
          const record = facts.records.get(worker);
          const window = record
            ? [Date.parse(record.since), Date.parse(record.until)]
            : facts.delayMs > 0
              ? [NOW, NOW + facts.delayMs]
              : undefined;
          if (!window || window[1] <= NOW) return undefined;
          const limit = downtimeMs(task);
          return limit === undefined || limit >= window[1] - window[0] ? worker : undefined;
        };
        const heldOn = new Map<string, string>();
        for (const hold of decision.holds.values())
          for (const id of hold.taskIds) heldOn.set(id, hold.worker);
        for (const task of facts.tasks.values()) {
          const members = [...facts.tasks.values()].filter(
            (t) => task.key !== undefined && t.key === task.key,
          );
          const worker = holdable(task.id);
          const whole = members.every((member) => holdable(member.id) === worker);
          expect(heldOn.get(task.id)).toBe(worker !== undefined && whole ? worker : undefined);
        }
        // Records: a new hold is written, a hold that no longer holds anything is deleted.
        expect([...decision.puts.keys()].every((w) => decision.holds.has(w) && !facts.records.has(w))).toBe(
          true,
        );
        expect(new Set(decision.deletes)).toEqual(
          new Set([...facts.records.keys()].filter((w) => !decision.holds.has(w))),
        );
        expect(new Set(decision.leftDeletes)).toEqual(
          new Set([...facts.left].filter((w) => !facts.registered.has(w))),
        );
        const ends = [...decision.holds.values()].map((hold) => Date.parse(hold.until));
        expect(decision.nextEndMs).toBe(ends.length > 0 ? Math.min(...ends) : undefined);
      }),
    );
  });

  it("releases every hold once its end has passed, and keeps it until then", () => {
    fc.assert(
      fc.property(factsArbitrary, fc.integer({ min: 0, max: 120_000 }), (facts, laterMs) => {
        const first = decideHolds(facts);
        const records = new Map(facts.records);
        for (const [worker, record] of first.puts) records.set(worker, record);
        for (const worker of first.deletes) records.delete(worker);
        // The schedule removed every gone worker's task that was not held.
        const current = new Map<string, string[]>();
        for (const [worker, ids] of facts.current as Map<string, string[]>) {
          if (facts.registered.has(worker)) current.set(worker, ids);
          else if (first.holds.has(worker)) current.set(worker, first.holds.get(worker)?.taskIds ?? []);
        }
        const later = decideHolds({ ...facts, nowMs: NOW + laterMs, records, current });
        for (const [worker, hold] of first.holds) {
          const stillHeld = Date.parse(hold.until) > NOW + laterMs;
          expect(later.holds.has(worker)).toBe(stillHeld);
          if (stillHeld) expect(later.holds.get(worker)?.taskIds).toEqual(hold.taskIds);
          else expect(later.deletes).toContain(worker);
        }
        expect(later.puts.size).toBe(0);
      }),
    );
  });

  it("keeps held tasks on their gone worker in the plan: no add, no remove, no move", () => {
    fc.assert(
      fc.property(factsArbitrary, (facts) => {
        const decision = decideHolds(facts);
        const tasks = [...facts.tasks.values()].map(({ maxDowntime: _, ...task }) => task);
        const workers = [...facts.registered];
        const input = { workers, tasks, current: facts.current as Map<string, string[]> };
        const target = planAroundHolds(input, decision, (free) =>
          free.workers.length === 0 ? undefined : plan(free),
        );
        for (const hold of decision.holds.values()) {
          expect(new Set(target?.assignment[hold.worker])).toEqual(new Set(hold.taskIds));
          for (const id of hold.taskIds) {
            expect(Object.values(target?.add ?? {}).flat()).not.toContain(id);
            expect(Object.values(target?.remove ?? {}).flat()).not.toContain(id);
          }
        }
        // Every task not held is placed on a registered worker or unassigned, as without holds.
        const held = new Set([...decision.holds.values()].flatMap((hold) => hold.taskIds));
        for (const task of tasks) {
          if (held.has(task.id)) continue;
          const on = Object.entries(target?.assignment ?? {}).filter(([, ids]) => ids.includes(task.id));
          const unassigned = target === undefined || target.unassigned.includes(task.id);
          expect(on.length + (unassigned ? 1 : 0)).toBe(1);
          if (on.length === 1) expect(facts.registered.has(on[0][0])).toBe(true);
        }
      }),
    );
  });
});

describe("maxDowntime", () => {
  it("accepts ms numbers and duration strings, and names anything else", () => {
    expect(maxDowntimeProblem(0)).toBeUndefined();
    expect(maxDowntimeProblem("30s")).toBeUndefined();
    expect(maxDowntimeProblem(-1)).toMatch(/must be a duration/);
    expect(maxDowntimeProblem("soon")).toMatch(/"soon"/);
    expect(maxDowntimeProblem(Number.NaN)).toMatch(/must be a duration/);
  });
});
