import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { keptStatus, reportsFailures, reportsRunning } from "../../../src/master/status-source.js";
import type { TaskStatus } from "../../../src/node/index.js";

const statusArb: fc.Arbitrary<TaskStatus> = fc.record(
  {
    state: fc.constantFrom("starting", "running", "failed", "stopping"),
    attempt: fc.nat(),
    since: fc.date({ noInvalidDate: true }).map((date) => date.toISOString()),
    error: fc.string(),
    failures: fc.nat(),
    exhausted: fc.boolean(),
  },
  { requiredKeys: ["state", "attempt", "since"] },
);

// A worker's JSON, or any text a hand-written key may hold.
const valueArb = fc.oneof(
  statusArb.map((status) => JSON.stringify(status)),
  fc.string(),
  fc.string().map((text) => `${text}"state":"running"${text}`),
);

describe("what the leader keeps of a status value", () => {
  it("answers both questions the leader asks of a status as the whole value does", () => {
    fc.assert(
      fc.property(valueArb, (value) => {
        const kept = keptStatus(value);
        expect(reportsFailures(kept)).toBe(reportsFailures(value));
        expect(reportsRunning(kept)).toBe(reportsRunning(value));
        // A status the escalation reads is kept whole.
        if (reportsFailures(value)) expect(kept).toBe(value);
      }),
      { numRuns: 2_000 },
    );
  });

  it("keeps two shared strings, not one per status, for statuses without failures", () => {
    const values = Array.from({ length: 1_000 }, (_, i) =>
      JSON.stringify({ state: i % 2 ? "running" : "starting", attempt: 1, since: new Date(i).toISOString() }),
    );
    expect(new Set(values.map(keptStatus)).size).toBe(2);
  });
});
