import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type RevisionBatch, RevisionMerge } from "../../../src/watcher/revision-merge.js";

/**
 * The merge of several watches against a model history: each revision writes into some of the watched
 * ranges; each watch delivers its own revisions in order, in chunks, interleaved with the other watches
 * at random, sometimes again after a reconnection. Whatever the interleaving, what was released is
 * exactly the history's events up to the least revision every watch delivered past, revision by
 * revision in order, each revision once with the events of every range.
 */
const WATCHES = 3;
const historyArbitrary = fc.array(fc.uniqueArray(fc.nat(WATCHES - 1), { minLength: 0, maxLength: WATCHES }), {
  minLength: 1,
  maxLength: 30,
});

describe("RevisionMerge (a watch of several ranges in one revision order)", () => {
  it("releases every revision once, in order, only when every watch has delivered past it", () => {
    fc.assert(
      fc.property(
        historyArbitrary,
        fc.array(fc.tuple(fc.nat(WATCHES - 1), fc.integer({ min: 1, max: 4 }), fc.boolean())),
        (history, deliveries) => {
          const from = 10;
          // Revision from+1+i writes event "<revision>:<watch>" into each range in history[i].
          const perWatch: RevisionBatch<string>[][] = Array.from({ length: WATCHES }, () => []);
          history.forEach((watches, i) => {
            const revision = from + 1 + i;
            for (const watch of watches)
              perWatch[watch]?.push({ revision, events: [`${revision}:${watch}`] });
          });
          const sent = Array.from({ length: WATCHES }, () => 0);
          const merge = new RevisionMerge<string>(WATCHES, from);
          const released: RevisionBatch<string>[] = [];
          const deliver = (watch: number, count: number, replay: boolean) => {
            const own = perWatch[watch] as RevisionBatch<string>[];
            const start = replay ? Math.max(0, (sent[watch] as number) - count) : (sent[watch] as number);
            const chunk = own.slice(start, start + count);
            sent[watch] = Math.max(sent[watch] as number, start + chunk.length);
            if (chunk.length > 0) released.push(...merge.deliver(watch, chunk, 0));
          };
          for (const [watch, count, replay] of deliveries) deliver(watch, count, replay);
          // A last write into every range (the mark): then everything is released.
          const last = from + history.length + 1;
          for (let watch = 0; watch < WATCHES; watch++) {
            (perWatch[watch] as RevisionBatch<string>[]).push({
              revision: last,
              events: [`${last}:${watch}`],
            });
          }
          for (let watch = 0; watch < WATCHES; watch++) deliver(watch, 1_000, false);

          const delivered = (watch: number) => {
            const own = perWatch[watch] as RevisionBatch<string>[];
            return (sent[watch] as number) === 0
              ? from
              : (own[(sent[watch] as number) - 1] as RevisionBatch<string>).revision;
          };
          expect(merge.revision).toBe(Math.min(...Array.from({ length: WATCHES }, (_, w) => delivered(w))));
          expect(merge.revision).toBe(last);
          const withEvents = released.filter((batch) => batch.events.length > 0);
          const revisions = released.map((batch) => batch.revision);
          expect(revisions).toEqual([...revisions].sort((a, b) => a - b));
          expect(new Set(revisions).size).toBe(revisions.length);
          const expected = [...history.map((watches) => watches), [0, 1, 2]]
            .map((watches, i) => ({
              revision: from + 1 + i,
              events: [...watches].sort().map((watch) => `${from + 1 + i}:${watch}`),
            }))
            .filter((batch) => batch.events.length > 0);
          expect(withEvents.map((batch) => ({ ...batch, events: [...batch.events].sort() }))).toEqual(
            expected,
          );
          expect(merge.pending).toBe(0);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("holds back what one watch delivered while another has not got there", () => {
    const merge = new RevisionMerge<string>(2, 5);
    expect(merge.deliver(0, [{ revision: 7, events: ["a"] }], 0)).toEqual([]);
    expect(merge.revision).toBe(5);
    expect(merge.deliver(1, [{ revision: 6, events: ["b"] }], 0)).toEqual([{ revision: 6, events: ["b"] }]);
    expect(merge.deliver(1, [{ revision: 9, events: ["c"] }], 0)).toEqual([{ revision: 7, events: ["a"] }]);
    expect(merge.deliver(0, [{ revision: 9, events: ["d"] }], 0)).toEqual([
      { revision: 9, events: ["d", "c"] },
    ]);
  });
});
