import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { escalate } from "../../../src/master/escalation-input.js";
import { type EscalationTasks, withRestartPolicy } from "../../../src/master/escalation.js";
import type { ValidTask } from "../../../src/master/validation.js";

const taskArb = fc.record(
  {
    payload: fc.string({ maxLength: 6 }),
    restart: fc.record(
      { limit: fc.nat({ max: 5 }), window: fc.constantFrom("1m", "5m"), quarantineAfter: fc.nat({ max: 3 }) },
      { requiredKeys: [] },
    ),
  },
  { requiredKeys: [] },
);
const defaultsArb = fc.record({
  limit: fc.nat({ max: 4 }),
  window: fc.integer({ min: 1_000, max: 600_000 }),
  quarantineAfter: fc.nat({ max: 3 }),
});

describe("the escalation the leader keeps between schedules", () => {
  it("gives each generated task the policy and fingerprint withRestartPolicy gives it", () => {
    fc.assert(
      fc.property(fc.array(taskArb, { maxLength: 12 }), defaultsArb, (drafts, defaults) => {
        const valid: ValidTask[] = drafts.map((draft, i) => {
          const task = { id: `t${i}`, ...draft };
          const value = JSON.stringify(task);
          return { task, value, bytes: value.length };
        });
        const positions = new Map(valid.map((entry, i) => [entry.task.id, i]));
        let kept: EscalationTasks | undefined;
        const inputs = {
          defaults,
          records: () => new Map(),
          observe: (tasks: EscalationTasks) => (kept = tasks),
        };
        escalate(valid, inputs, Date.now(), positions);
        for (const entry of valid) {
          const expected = withRestartPolicy(entry, defaults).escalation;
          const got = kept?.get(entry.task.id);
          expect(got?.policy).toEqual(expected.policy);
          expect(got?.fingerprint).toBe(expected.fingerprint);
        }
        expect(kept?.get("absent")).toBeUndefined();
      }),
      { numRuns: 500 },
    );
  });
});
