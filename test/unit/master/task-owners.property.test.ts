import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type CurrentAssignment, ownersOf } from "../../../src/master/changes.js";
import { removalCheck } from "../../../src/master/guard.js";
import { taskLookup, validatedTasks } from "../../../src/master/validation.js";
import { removalReference } from "../../helpers/removal-reference.js";

/** The owners as a Map: the last worker listing an id, in the order ids first appear. */
function expectedOwners(current: CurrentAssignment): Map<string, string> {
  const owners = new Map<string, string>();
  for (const [worker, ids] of current) for (const id of ids.keys()) owners.set(id, worker);
  return owners;
}

const id = fc.integer({ min: 0, max: 30 }).map((n) => `t${n}`);
const assignment = fc
  .dictionary(fc.constantFrom("w1", "w2", "w3", "gone", "constructor"), fc.uniqueArray(id, { maxLength: 20 }))
  .map(
    (byWorker): CurrentAssignment =>
      new Map(Object.entries(byWorker).map(([worker, ids]) => [worker, new Map(ids.map((t) => [t, "{}"]))])),
  );

describe("TaskOwners indexed over the generated ids", () => {
  it("finds, lists and counts the owners as the index of its own does, a task under several workers included", () => {
    fc.assert(
      fc.property(
        assignment,
        fc.uniqueArray(id, { maxLength: 25 }),
        fc.array(id),
        (current, kept, moving) => {
          const { tasks, positions } = validatedTasks(kept.map((t) => ({ id: t })));
          const byId = taskLookup(tasks, positions);
          const indexed = ownersOf(current, byId);
          const plain = ownersOf(current);
          const expected = expectedOwners(current);
          for (const owners of [indexed, plain]) {
            expect([...owners]).toEqual([...expected]);
            expect(owners.keys()).toEqual([...expected.keys()]);
            expect(owners.values()).toEqual([...expected.values()]);
            expect(owners.size).toBe(expected.size);
            for (let n = 0; n <= 31; n++) {
              expect(owners.get(`t${n}`)).toBe(expected.get(`t${n}`));
              expect(owners.has(`t${n}`)).toBe(expected.has(`t${n}`));
            }
            const missing = [...expected.keys()].filter((t) => !byId.has(t)).length;
            expect(owners.missingFrom(byId)).toBe(missing);
            expect(owners.missingFrom(new Set(kept))).toBe(missing);
            expect(removalCheck(owners, byId, 30, false, moving)).toMatchObject(
              removalReference(current, kept, moving),
            );
          }
        },
      ),
    );
  });
});
