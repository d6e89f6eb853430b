import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { steadinessVerdict, UNSTEADY_SUSPENSIONS } from "../../../src/worker/steadiness.js";

const WINDOW = 10_000;

/** Ascending suspension times up to `now`, and `now`. */
const history = fc
  .tuple(
    fc.array(fc.integer({ min: 0, max: 60_000 }), { maxLength: 12 }),
    fc.integer({ min: 0, max: 20_000 }),
  )
  .map(([times, after]) => {
    const sorted = [...times].sort((a, b) => a - b);
    return { suspendedAt: sorted, now: (sorted.at(-1) ?? 0) + after };
  });

describe("steadinessVerdict", () => {
  it("marks an unmarked worker exactly when it was suspended often enough within the window", () => {
    fc.assert(
      fc.property(history, fc.boolean(), ({ suspendedAt, now }, suspendedNow) => {
        const recent = suspendedAt.filter((at) => now - at < WINDOW).length;
        const verdict = steadinessVerdict(suspendedAt, suspendedNow, false, now, WINDOW);
        expect(verdict).toBe(recent >= UNSTEADY_SUSPENSIONS ? "mark" : "keep");
      }),
    );
  });

  it("clears a mark only after a whole window without a suspension, and never while suspended", () => {
    fc.assert(
      fc.property(history, fc.boolean(), ({ suspendedAt, now }, suspendedNow) => {
        const verdict = steadinessVerdict(suspendedAt, suspendedNow, true, now, WINDOW);
        const quietFor = now - (suspendedAt.at(-1) ?? Number.NEGATIVE_INFINITY);
        if (verdict === "clear") {
          expect(suspendedNow).toBe(false);
          expect(quietFor).toBeGreaterThanOrEqual(WINDOW);
        } else expect(verdict).toBe(suspendedNow || quietFor < WINDOW ? "keep" : "clear");
      }),
    );
  });

  it("one suspension, or two, never marks a worker (an election of etcd's own leader is not a flap)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 5_000 }), { maxLength: UNSTEADY_SUSPENSIONS - 1 }),
        (times) => {
          const sorted = [...times].sort((a, b) => a - b);
          expect(steadinessVerdict(sorted, true, false, 5_000, WINDOW)).toBe("keep");
        },
      ),
    );
  });
});
