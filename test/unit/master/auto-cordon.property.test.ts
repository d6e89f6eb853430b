import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { autoCordonReason, withinShare, workersToCordon } from "../../../src/master/auto-cordon.js";
import type { EscalationTask } from "../../../src/master/escalation.js";
import type { FailureRecord } from "../../../src/node/index.js";

const WORKERS = ["w1", "w2", "w3"];
const NOW = Date.parse("2026-12-01T12:00:00Z");
const WINDOW = 60_000;
const policy = { limit: 2, window: WINDOW, quarantineAfter: 0 };

/** A task's failures (worker → exhausted how long ago, or not exhausted) and where it runs now. */
const taskArb = fc.record({
  exhausted: fc.dictionary(fc.constantFrom(...WORKERS), fc.option(fc.integer({ min: 0, max: 2 * WINDOW }))),
  running: fc.subarray(WORKERS),
});

function facts(after: number, fleet: Array<{ exhausted: Record<string, number | null>; running: string[] }>) {
  const records = new Map<string, FailureRecord>();
  const tasks = new Map<string, EscalationTask>();
  const running = new Map<string, Set<string>>();
  fleet.forEach((task, i) => {
    const id = `t${i}`;
    tasks.set(id, { policy, fingerprint: "f" });
    running.set(id, new Set(task.running));
    const workers: FailureRecord["workers"] = {};
    for (const [worker, ago] of Object.entries(task.exhausted)) {
      workers[worker] = {
        failures: 2,
        error: "e",
        at: new Date(NOW).toISOString(),
        ...(ago === null ? {} : { exhaustedAt: new Date(NOW - ago).toISOString() }),
      };
    }
    records.set(id, { fingerprint: "f", workers });
  });
  return { after, records, tasks, runningOn: (id: string) => running.get(id), now: NOW };
}

describe("the automatic cordon's verdict (workersToCordon)", () => {
  it("condemns exactly the workers with at least K tasks exhausted there within the window and running elsewhere", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 3 }), fc.array(taskArb, { maxLength: 8 }), (after, fleet) => {
        const verdicts = workersToCordon(facts(after, fleet));
        for (const worker of WORKERS) {
          const condemning = fleet
            .map((task, i) => ({ task, id: `t${i}` }))
            .filter(({ task }) => {
              const ago = task.exhausted[worker];
              return (
                ago !== undefined && ago !== null && ago < WINDOW && task.running.some((w) => w !== worker)
              );
            })
            .map(({ id }) => id)
            .sort();
          if (after > 0 && condemning.length >= after) expect(verdicts.get(worker)).toEqual(condemning);
          else expect(verdicts.has(worker)).toBe(false);
        }
      }),
    );
  });

  it("never condemns for tasks that run nowhere (poison tasks failing everywhere)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3 }), fc.array(taskArb, { maxLength: 8 }), (after, fleet) => {
        const nowhere = fleet.map((task) => ({ ...task, running: [] }));
        expect(workersToCordon(facts(after, nowhere)).size).toBe(0);
      }),
    );
  });

  it("counts no failure from before an operator's last uncordon of the worker", () => {
    fc.assert(
      fc.property(
        fc.array(taskArb, { maxLength: 8 }),
        fc.integer({ min: 0, max: 2 * WINDOW }),
        (fleet, ago) => {
          const uncordonedAt = NOW - ago;
          const verdicts = workersToCordon({
            ...facts(1, fleet),
            uncordonedAt: (w) => (w === "w1" ? uncordonedAt : undefined),
          });
          const after = fleet.filter((task) => {
            const exhausted = task.exhausted.w1;
            return (
              exhausted !== undefined &&
              exhausted !== null &&
              exhausted < Math.min(ago, WINDOW) &&
              task.running.some((w) => w !== "w1")
            );
          });
          expect(verdicts.get("w1")?.length ?? 0).toBe(after.length);
        },
      ),
    );
  });

  it("cordons nobody when most workers qualify (an outage), and only a minority otherwise", () => {
    const registered = new Set(["w1", "w2", "w3", "w4"]);
    const condemned = (...workers: string[]) => new Map(workers.map((w) => [w, ["t"]]));
    expect([...withinShare(condemned("w1"), new Set(), new Set(), registered).keys()]).toEqual(["w1"]);
    expect([...withinShare(condemned("w1", "w2"), new Set(), new Set(), registered).keys()]).toEqual([
      "w1",
      "w2",
    ]);
    expect(withinShare(condemned("w1", "w2", "w3"), new Set(), new Set(), registered).size).toBe(0);
    // Workers cordoned automatically before count, and a worker no longer registered does not.
    expect(withinShare(condemned("w1", "w2"), new Set(), new Set(["w3"]), registered).size).toBe(0);
    expect(withinShare(condemned("w1", "w2"), new Set(), new Set(["gone"]), registered).size).toBe(2);
    // Workers failing as much but whose tasks run nowhere yet (an outage ending) count too.
    expect(withinShare(condemned("w1"), new Set(["w1", "w2", "w3"]), new Set(), registered).size).toBe(0);
    expect(withinShare(condemned("w1", "w2"), new Set(), new Set(), new Set(["w1", "w2"])).size).toBe(0);
  });

  it("says how many tasks and names the first five", () => {
    expect(autoCordonReason(["a"])).toBe("auto: 1 task failed here that run elsewhere (a)");
    expect(autoCordonReason(["a", "b"])).toBe("auto: 2 tasks failed here that run elsewhere (a, b)");
    expect(autoCordonReason(["a", "b", "c", "d", "e", "f", "g"])).toBe(
      "auto: 7 tasks failed here that run elsewhere (a, b, c, d, e, … 2 more)",
    );
  });
});
