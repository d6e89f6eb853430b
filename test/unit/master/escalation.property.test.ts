import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decide, type EscalationTask, recordFailure } from "../../../src/master/escalation.js";
import type { FailureRecord, TaskStatus } from "../../../src/node/index.js";
import { FailureWindow } from "../../../src/worker/failure-window.js";

/**
 * The escalation as a state machine: handler failures on workers (each worker counting its own within
 * the window, as the TaskRunner does) go through the leader's record to a decision — restart where it
 * is, move off the workers where the limit was reached, or quarantine. The model counts the same
 * failures independently and says what the decision must be after every step.
 */

const WORKERS = ["w1", "w2", "w3", "w4"];

const policies = fc.record({
  limit: fc.integer({ min: 1, max: 4 }),
  window: fc.integer({ min: 100, max: 5_000 }),
  quarantineAfter: fc.integer({ min: 0, max: 4 }),
});
const steps = fc.array(
  fc.record({
    worker: fc.constantFrom(...WORKERS),
    afterMs: fc.integer({ min: 0, max: 3_000 }),
    /** The same status seen twice (a watch replay or a resync) must count once. */
    replayed: fc.boolean(),
  }),
  { maxLength: 40 },
);

describe("failure escalation (property)", () => {
  it("restarts in place below the limit, excludes a worker once its failures within the window reach the limit, and quarantines after that happened on quarantineAfter workers", () => {
    fc.assert(
      fc.property(policies, steps, (policy, events) => {
        const task: EscalationTask = { policy, fingerprint: "v1" };
        const windows = new Map(WORKERS.map((w) => [w, new FailureWindow()]));
        const limit = { limit: policy.limit, windowMs: policy.window };
        const times = new Map<string, number[]>();
        const reachedAt = new Map<string, number>();
        let record: FailureRecord | undefined;
        let now = Date.parse("2026-12-01T00:00:00Z");
        for (const [i, event] of events.entries()) {
          now += event.afterMs;
          const counted = (windows.get(event.worker) as FailureWindow).add(now, limit);
          const mine = [...(times.get(event.worker) ?? []), now].filter((t) => t > now - policy.window);
          times.set(event.worker, mine);
          // The worker's own count is the model's, and it stops restarting exactly at the limit.
          expect(counted.failures).toBe(mine.length);
          expect(counted.exhausted).toBe(mine.length >= policy.limit);
          if (counted.exhausted) {
            reachedAt.set(event.worker, now);
            expect(counted.retryInMs).toBeGreaterThan(0);
            expect(counted.retryInMs).toBeLessThanOrEqual(policy.window);
          }
          const status: TaskStatus = {
            state: "failed",
            attempt: i + 1,
            since: new Date(now).toISOString() + `#${i}`,
            error: `boom ${i}`,
            failures: counted.failures,
            ...(counted.exhausted ? { exhausted: true } : {}),
          };
          const next = recordFailure(record, task, event.worker, status, now);
          expect(next).toBeDefined();
          record = next;
          if (event.replayed) expect(recordFailure(record, task, event.worker, status, now)).toBeUndefined();

          const decision = decide(record, task, now);
          const exhausted = [...reachedAt.keys()];
          const quarantined = policy.quarantineAfter > 0 && exhausted.length >= policy.quarantineAfter;
          expect(decision.quarantined).toBe(quarantined);
          const excluded = quarantined
            ? []
            : exhausted.filter((w) => (reachedAt.get(w) as number) + policy.window > now);
          expect([...decision.exclude].sort()).toEqual(excluded.sort());
          expect(decision.failedOn).toHaveLength(exhausted.length);
          // A task with a record about another value starts clean (a payload change resets it).
          expect(decide(record, { policy, fingerprint: "v2" }, now)).toEqual({
            quarantined: false,
            exclude: [],
            failedOn: [],
          });
        }
      }),
    );
  });

  it("never escalates a status that is not a handler failure (a run lock held elsewhere, a bad value)", () => {
    const task: EscalationTask = {
      policy: { limit: 1, window: 1_000, quarantineAfter: 1 },
      fingerprint: "v",
    };
    for (const status of [
      { state: "failed", attempt: 1, since: "t", error: 'run lock held by worker "w2"' },
      { state: "running", attempt: 1, since: "t", failures: 3 },
    ] as TaskStatus[]) {
      expect(recordFailure(undefined, task, "w1", status, 0)).toBeUndefined();
    }
  });
});
