import type { IKeyValue } from "etcd3";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { RangeState } from "../../../src/master/view/range-state.js";
import { prefixRange } from "../../../src/node/index.js";
import { readFacts } from "../../helpers/read-facts.js";

/**
 * The view's pure core against a model store: whatever sequence of revisions (puts and deletes, several
 * keys per revision as a transaction writes them, keys inside and outside the held ranges, snapshots
 * replacing everything), `ranges()` equals the model's read of the same ranges at the state's revision.
 */
const ranges = [prefixRange("/r/worker/"), prefixRange("/r/task/"), { key: Buffer.from("/r/paused") }];
const keyArbitrary = fc
  .oneof(
    fc.constantFrom("/r/worker/", "/r/task/", "/r/status/", "/r/task", "/r/"),
    fc.constant("/r/paused"),
    fc.constant("/r/paused2"),
  )
  .chain((prefix) =>
    prefix === "/r/paused" || prefix === "/r/paused2"
      ? fc.constant(prefix)
      : fc.stringMatching(/^[a-c\u00e9]{0,3}$/).map((leaf) => prefix + leaf),
  );
const writeArbitrary = fc.record({
  key: keyArbitrary,
  type: fc.constantFrom<"Put" | "Delete">("Put", "Put", "Delete"),
  value: fc.string({ maxLength: 3 }),
});
const stepArbitrary = fc.oneof(
  { weight: 8, arbitrary: fc.record({ writes: fc.array(writeArbitrary, { minLength: 1, maxLength: 4 }) }) },
  { weight: 1, arbitrary: fc.constant({ snapshot: true as const }) },
  { weight: 1, arbitrary: fc.record({ replay: fc.nat() }) },
);

function kv(key: string, value: string, revision: number, created: number): IKeyValue {
  return {
    key: Buffer.from(key),
    value: Buffer.from(value),
    create_revision: String(created),
    mod_revision: String(revision),
    version: "1",
    lease: "0",
  };
}

/** The model's read of `ranges`, as etcd returns it: each range's keys in byte order. */
function modelRead(store: Map<string, IKeyValue>): IKeyValue[][] {
  const sorted = [...store.values()].sort((a, b) => Buffer.compare(a.key, b.key));
  return ranges.map((range) =>
    sorted.filter((item) =>
      range.range_end === undefined
        ? item.key.equals(range.key as Buffer)
        : Buffer.compare(item.key, range.key as Buffer) >= 0 && Buffer.compare(item.key, range.range_end) < 0,
    ),
  );
}

describe("RangeState (the master view's pure core)", () => {
  it("equals a read of its ranges at its revision after any sequence of revisions and snapshots", () => {
    fc.assert(
      fc.property(fc.array(stepArbitrary, { maxLength: 40 }), (steps) => {
        const store = new Map<string, IKeyValue>();
        const state = new RangeState(ranges);
        let revision = 1;
        const applied: Array<{ revision: number; events: Array<{ type: "Put" | "Delete"; kv: IKeyValue }> }> =
          [];
        state.replace({ revision, kvs: [] });
        for (const step of steps) {
          if ("snapshot" in step) {
            state.replace({ revision, kvs: [...store.values()] });
          } else if ("replay" in step) {
            // A revision delivered again (a watch resumed at an older revision) changes nothing.
            const again = applied[step.replay % Math.max(1, applied.length)];
            if (again) state.apply(again.revision, again.events);
          } else {
            revision++;
            const events: Array<{ type: "Put" | "Delete"; kv: IKeyValue }> = [];
            for (const write of step.writes) {
              const previous = store.get(write.key);
              if (write.type === "Put") {
                const item = kv(
                  write.key,
                  write.value,
                  revision,
                  previous ? Number(previous.create_revision) : revision,
                );
                store.set(write.key, item);
                events.push({ type: "Put", kv: item });
              } else if (previous) {
                store.delete(write.key);
                events.push({ type: "Delete", kv: kv(write.key, "", revision, 0) });
              }
            }
            applied.push({ revision, events });
            state.apply(revision, events);
          }
          expect(state.revision).toBe(revision);
          expect(readFacts(state.ranges())).toEqual(readFacts(modelRead(store)));
        }
      }),
      { numRuns: 200 },
    );
  });
});
