import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { keyLayout } from "../../../src/node/index.js";
import { LiveWorkers } from "../../../src/master/registered.js";

const keys = keyLayout("live");

/** A registration view as the master's watch keeps it: keys, which have a lease, and a revision. */
class View {
  readonly entries = new Map<string, string>();
  readonly leased = new Set<string>();
  revision = 1;
  hasLease(key: string): boolean {
    return this.entries.has(key) && this.leased.has(key);
  }
  modRevision(key: string): number | undefined {
    return this.entries.has(key) ? this.revision : undefined;
  }
}

const expected = (view: View) =>
  [...view.entries.keys()]
    .filter((key) => view.hasLease(key))
    .flatMap((key) => keys.parseWorker(key) ?? [])
    .sort();

describe("LiveWorkers (property)", () => {
  it("names exactly the registrations under a lease, whenever the view's revision moved or it was told to forget", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            op: fc.constantFrom("put", "putLeaseless", "delete", "read"),
            worker: fc.constantFrom("w1", "w2", "w3", "w4"),
            // A resync may replace the view at its revision (another history): then the term forgets.
            sameRevision: fc.boolean(),
          }),
          { maxLength: 40 },
        ),
        (steps) => {
          const view = new View();
          const live = new LiveWorkers(view, keys);
          for (const { op, worker, sameRevision } of steps) {
            const key = keys.worker(worker);
            if (op !== "read") {
              if (op === "delete") view.entries.delete(key);
              else view.entries.set(key, "{}");
              if (op === "put") view.leased.add(key);
              else view.leased.delete(key);
              if (sameRevision) live.forget();
              else view.revision += 1;
            }
            expect([...live.names()].sort()).toEqual(expected(view));
            expect(live.list().sort()).toEqual(expected(view));
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("works the names out once per revision: the same set is returned until the view moves", () => {
    const view = new View();
    view.entries.set(keys.worker("w1"), "{}");
    view.leased.add(keys.worker("w1"));
    const live = new LiveWorkers(view, keys);
    const first = live.names();
    expect(live.names()).toBe(first);
    view.revision += 1;
    expect(live.names()).not.toBe(first);
    expect([...live.names()]).toEqual(["w1"]);
  });
});
