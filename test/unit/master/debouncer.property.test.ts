import fc from "fast-check";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Debouncer } from "../../../src/master/triggers.js";

const WAIT = 100;

type Event = { kind: "poke" | "cancel" | "act"; at: number };

describe("Debouncer (property)", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("acts on every poke within twice the wait, never without a poke, and only after the wait's quiet or the bound", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ gap: fc.integer({ min: 0, max: 3 * WAIT }), cancel: fc.boolean() }), {
          minLength: 1,
          maxLength: 40,
        }),
        (steps) => {
          vi.useFakeTimers();
          const start = Date.now();
          const log: Event[] = [];
          const now = () => Date.now() - start;
          const debouncer = new Debouncer(WAIT, () => log.push({ kind: "act", at: now() }));
          for (const { gap, cancel } of steps) {
            vi.advanceTimersByTime(gap);
            // A cancel stands for a schedule that covered the changes poked so far.
            if (cancel) {
              debouncer.cancel();
              log.push({ kind: "cancel", at: now() });
            }
            debouncer.poke();
            log.push({ kind: "poke", at: now() });
          }
          vi.advanceTimersByTime(10 * WAIT);
          vi.useRealTimers();

          log.forEach((event, i) => {
            if (event.kind === "poke") {
              // Acted on, or covered by a cancel, within twice the wait.
              const settled = log.slice(i + 1).find((later) => later.kind !== "poke");
              expect(settled, `poke at ${event.at}`).toBeDefined();
              expect((settled as Event).at - event.at).toBeLessThanOrEqual(2 * WAIT);
            }
            if (event.kind === "act") {
              let from = i;
              while (from > 0 && log[from - 1]?.kind === "poke") from--;
              const pokes = log.slice(from, i).map((poke) => poke.at);
              expect(pokes.length, `action at ${event.at} without a poke`).toBeGreaterThan(0);
              const quiet = event.at - Math.max(...pokes) >= WAIT;
              const bound = event.at - Math.min(...pokes) >= 2 * WAIT;
              expect(quiet || bound, `action at ${event.at} after pokes ${pokes}`).toBe(true);
            }
          });
        },
      ),
      { numRuns: 300 },
    );
  });
});
