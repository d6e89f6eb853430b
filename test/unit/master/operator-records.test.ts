import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Plan } from "../../../src/balancer/index.js";
import type { CurrentAssignment } from "../../../src/master/changes.js";
import { ownersOf } from "../../../src/master/changes.js";
import { removalCheck } from "../../../src/master/guard.js";
import { HISTORY_MOVES_LIMIT, historyRecord, taskChanges } from "../../../src/master/history.js";
import type { ValidTask } from "../../../src/master/validation.js";
import { removalReference } from "../../helpers/removal-reference.js";

const current = (assignment: Record<string, string[]>): CurrentAssignment =>
  new Map(Object.entries(assignment).map(([worker, ids]) => [worker, new Map(ids.map((id) => [id, "{}"]))]));
const generated = (...ids: string[]): ValidTask[] =>
  ids.map((id) => ({ task: { id }, value: "{}" }) as ValidTask);
/** The assignment with each task under the first worker listing it only. */
const onePlace = (byWorker: Record<string, string[]>) => {
  const seen = new Set<string>();
  return Object.fromEntries(
    Object.entries(byWorker).map(([worker, ids]) => [
      worker,
      ids.filter((id) => !seen.has(id) && seen.add(id)),
    ]),
  );
};
/** The guard's reading from the indexes a schedule builds: the current owners, the generated ids. */
const checkRemoval = (
  assignment: CurrentAssignment,
  tasks: readonly ValidTask[],
  maxRemovalPercent: number,
  allowRemoval: boolean,
  moving: string[] = [],
) =>
  removalCheck(
    ownersOf(assignment),
    new Set(tasks.map((valid) => valid.task.id)),
    maxRemovalPercent,
    allowRemoval,
    moving,
  );
const target = (assignment: Record<string, string[]>): Plan => ({
  assignment,
  add: {},
  remove: {},
  unassigned: [],
  reasons: {},
  moved: 0,
});

describe("removal guard", () => {
  const assigned = current({ w1: ["a", "b"], w2: ["c", "d"] });

  it("refuses when the generator drops more than the limit, naming the counts", () => {
    const check = checkRemoval(assigned, generated("a"), 50, false);
    expect(check).toMatchObject({ assigned: 4, removing: 3 });
    expect(check.refusal).toMatch(/stop 3 of 4 assigned tasks \(75% > --max-removal 50%\)/);
  });

  it("lets a drop within the limit, a first schedule, 100 % and an allowed schedule through", () => {
    expect(checkRemoval(assigned, generated("a", "b"), 50, false).refusal).toBeUndefined();
    expect(checkRemoval(current({}), generated(), 0, false).refusal).toBeUndefined();
    expect(checkRemoval(assigned, generated(), 100, false).refusal).toBeUndefined();
    expect(checkRemoval(assigned, generated(), 50, true).refusal).toBeUndefined();
  });

  it("does not count moves or tasks of gone workers that are still generated", () => {
    const check = checkRemoval(current({ gone: ["a", "b", "c"] }), generated("a", "b", "c"), 0, false);
    expect(check).toEqual({ assigned: 3, removing: 0 });
  });

  it("counts tasks between owners (moves begun) as assigned: an empty inventory is refused while everything is in flight", () => {
    // Seen by schedule-controls.property.test.ts: w1's lease went mid-rebalance, every task was in flight,
    // and a new leader's generator answering [] dropped them all (nothing counted as assigned).
    const check = checkRemoval(current({}), generated(), 50, false, ["a", "b", "c"]);
    expect(check).toMatchObject({ assigned: 3, removing: 3 });
    expect(check.refusal).toMatch(/stop 3 of 3 assigned tasks/);
    expect(checkRemoval(current({ w1: ["a"] }), generated("a", "b"), 0, false, ["a", "b"])).toEqual({
      assigned: 2,
      removing: 0,
    });
  });
});

describe("history record", () => {
  it("lists moves, then removals, then additions, with from and to", () => {
    const record = historyRecord({
      leader: "m",
      epoch: 2,
      reasons: ["workers"],
      outcome: "applied",
      workers: ["w1", "w2"],
      tasks: 3,
      current: current({ w1: ["a", "b"], gone: ["x"] }),
      target: target({ w1: ["a"], w2: ["b", "c"] }),
    });
    expect(record).toMatchObject({ added: 1, removed: 1, moved: 1, unassigned: 0, outcome: "applied" });
    expect(record.moves).toEqual([
      { id: "b", from: "w1", to: "w2" },
      { id: "x", from: "gone" },
      { id: "c", to: "w2" },
    ]);
    expect(record.movesTruncated).toBeUndefined();
  });

  it("keeps at most 100 task changes and says so", () => {
    const ids = Array.from({ length: 150 }, (_, i) => `t${i}`);
    const record = historyRecord({
      leader: "m",
      epoch: 1,
      reasons: ["elected"],
      outcome: "refused",
      refusal: "removal guard: …",
      workers: ["w1"],
      tasks: 0,
      current: current({ w1: ids }),
    });
    expect(record.moves).toHaveLength(HISTORY_MOVES_LIMIT);
    expect(record).toMatchObject({ removed: 150, movesTruncated: true, refusal: "removal guard: …" });
  });

  it("lists the first 100 of every change, moves then removals then additions, and counts them all", () => {
    // The record lists at most 100 changes without building one per task (a first schedule has 50,000).
    const assignment = fc.dictionary(
      fc.constantFrom("w1", "w2", "w3", "gone"),
      fc.uniqueArray(
        fc.integer({ min: 0, max: 300 }).map((n) => `t${n}`),
        { maxLength: 150 },
      ),
    );
    fc.assert(
      fc.property(assignment, fc.option(assignment, { nil: undefined }), (before, after) => {
        const facts = { current: current(onePlace(before)), target: after && target(onePlace(after)) };
        const record = appliedRecord(facts);
        const { moved, removed, added } = taskChanges(facts.current, facts.target);
        const all = [...moved, ...removed, ...added];
        expect(record).toMatchObject({ moved: moved.length, removed: removed.length, added: added.length });
        expect(record.moves).toEqual(all.slice(0, HISTORY_MOVES_LIMIT));
        expect(record.movesTruncated).toBe(all.length > HISTORY_MOVES_LIMIT ? true : undefined);
      }),
    );
  });

  it("agrees with taskChanges when a task is listed under several workers now", () => {
    // The record matches only the tasks that change against one index of the current owners (the last
    // worker listing a task, as taskChanges has it); a plan names each task once.
    const ids = fc.uniqueArray(
      fc.integer({ min: 0, max: 40 }).map((n) => `t${n}`),
      { maxLength: 30 },
    );
    const assignment = fc.dictionary(fc.constantFrom("w1", "w2", "w3", "gone", "constructor"), ids);
    fc.assert(
      fc.property(
        assignment,
        fc.option(assignment, { nil: undefined }),
        fc.boolean(),
        (before, after, index) => {
          const facts = { current: current(before), target: after && target(onePlace(after)) };
          const record = appliedRecord({ ...facts, ...(index ? { owners: ownersOf(facts.current) } : {}) });
          const { moved, removed, added } = taskChanges(facts.current, facts.target);
          expect(record).toMatchObject({ moved: moved.length, removed: removed.length, added: added.length });
          expect(record.moves).toEqual([...moved, ...removed, ...added].slice(0, HISTORY_MOVES_LIMIT));
        },
      ),
    );
  });

  it("its removal guard reading from the schedule's indexes agrees with the sets it was computed from before", () => {
    const ids = fc.uniqueArray(
      fc.integer({ min: 0, max: 20 }).map((n) => `t${n}`),
      { maxLength: 12 },
    );
    fc.assert(
      fc.property(
        fc.dictionary(fc.constantFrom("w1", "w2", "gone"), ids),
        ids,
        ids,
        (before, kept, moving) => {
          const assignment = current(before);
          const tasks = generated(...kept);
          const byId = new Map(tasks.map((valid) => [valid.task.id, valid]));
          expect(removalCheck(ownersOf(assignment), byId, 30, false, moving)).toMatchObject(
            removalReference(assignment, kept, moving),
          );
        },
      ),
    );
  });
});

/** The history record of an applied schedule with these changes (leader, epoch and counts fixed). */
function appliedRecord(facts: Pick<Parameters<typeof historyRecord>[0], "current" | "target" | "owners">) {
  return historyRecord({
    ...facts,
    leader: "m",
    epoch: 1,
    reasons: [],
    outcome: "applied",
    workers: [],
    tasks: 0,
  });
}
