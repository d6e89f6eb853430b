import type { IKeyValue } from "etcd3";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { KeyLayout } from "../../../src/node/keys.js";
import { silentLogger } from "../../../src/node/logger.js";
import { SlotSearch, slotOrder } from "../../../src/node/slot-search.js";

const keys = new KeyLayout("r");
const held = (slot: number): IKeyValue =>
  ({ key: Buffer.from(keys.workerSlot(slot)), value: Buffer.from("w"), lease: "7" }) as IKeyValue;

/** Whether etcd would return `key` for one of `reads()`'s ranges. */
function inRanges(search: SlotSearch, key: string): boolean {
  const bytes = Buffer.from(key);
  return search.reads().some(({ request_range: range }) => {
    const from = Buffer.from(range?.key ?? "");
    const to = Buffer.from(range?.range_end ?? "");
    return Buffer.compare(bytes, from) >= 0 && Buffer.compare(bytes, to) < 0;
  });
}

describe("the search for a free cap slot", () => {
  it("orders slots as etcd orders their keys", () => {
    expect(slotOrder(12)).toEqual([0, 1, 10, 11, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it("reads exactly the slots it may pick, each once window after window, then every slot at once before it can say none is free", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 150 }),
        fc.double({ min: 0, max: 0.999, noNaN: true }),
        (cap, start) => {
          const search = new SlotSearch(keys, cap, silentLogger, () => start);
          const seen = new Set<number>();
          for (;;) {
            for (let slot = 0; slot < cap; slot++) {
              // Pickable: free while every other slot is held.
              const others = Array.from({ length: cap }, (_, i) => i).filter((i) => i !== slot);
              const pickable = search.pick(others.map(held)) === slot;
              expect(inRanges(search, keys.workerSlot(slot))).toBe(pickable);
              // Before the read of every slot, windows do not overlap: a slot is read once.
              if (pickable && !search.whole) expect(seen.has(slot)).toBe(false);
              if (pickable) seen.add(slot);
            }
            if (search.whole) break;
            search.advance();
          }
          expect(seen.size).toBe(cap);
          expect(search.reads()).toHaveLength(1);
        },
      ),
      { numRuns: 60 },
    );
  });
});
