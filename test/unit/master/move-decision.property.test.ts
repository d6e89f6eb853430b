import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  decideMove,
  type GeneratedTask,
  type MoveFacts,
  type Verdict,
} from "../../../src/master/move-decision.js";
import { KeyLayout } from "../../../src/node/index.js";

const keys = new KeyLayout("R");
const worker = fc.constantFrom("w1", "w2", "w3");
const workers = fc.uniqueArray(worker, { maxLength: 3 });
const record = fc.record({
  from: worker,
  to: worker,
  value: fc.string(),
  priority: fc.option(fc.integer({ min: -5, max: 5 }), { nil: undefined }),
});
const optional = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });
// What the planner reads of a task: a selector on zone, a spread over zone or rack, a key, an antiKey.
const task = fc
  .record({
    selector: optional(fc.constant({ zone: "a" })),
    spread: optional(fc.record({ label: fc.constantFrom("zone", "rack") })),
    key: optional(fc.constant("k")),
    antiKey: optional(fc.constant("x")),
  })
  .map((fields) => ({ id: "t", ...fields }));
const generated: fc.Arbitrary<GeneratedTask> = fc.record({
  value: fc.string(),
  priority: fc.integer({ min: -5, max: 5 }),
  exclude: workers,
  task,
});
const target = fc.record(
  {
    labels: fc.dictionary(fc.constantFrom("zone", "rack"), fc.constantFrom("a", "b")),
    mode: fc.constantFrom<"cordon" | "drain">("cordon", "drain"),
  },
  { requiredKeys: [] },
);
const facts: fc.Arbitrary<MoveFacts> = fc.record(
  {
    assignedTo: workers,
    reportedBy: workers,
    generated,
    generatorError: fc.string({ minLength: 1 }),
    target,
    keyWorkers: fc.array(worker, { maxLength: 3 }),
    antiKeyWorkers: workers,
  },
  { requiredKeys: ["assignedTo", "reportedBy", "keyWorkers", "antiKeyWorkers"] },
);
/** A target that is registered, neither cordoned nor draining, and has every label a task may ask for. */
const goodTarget = { labels: { zone: "a", rack: "b" } };
const unproven = fc.constantFrom<Verdict>("forged", "compacted");

describe("what a new term does with a move record (decideMove)", () => {
  it("a record no leader wrote, or whose history is compacted, writes only a generated task assigned to no worker, with its generated value, waiting for every worker that reports it", () => {
    fc.assert(
      fc.property(record, unproven, fc.option(facts, { nil: undefined }), (move, seen, known) => {
        const decision = decideMove(keys, "t", move, seen, known);
        if (decision.action === "delete") return;
        expect(seen).toBe("compacted");
        expect(known?.generatorError).toBeUndefined();
        expect(known?.assignedTo).toEqual([]);
        const task = known?.generated;
        expect(task).toBeDefined();
        expect(task?.exclude).not.toContain(move.to);
        const owners = new Set([move.from, ...(known?.reportedBy ?? [])]);
        owners.delete(move.to);
        expect(decision.put).toEqual({
          taskId: "t",
          worker: move.to,
          key: keys.task(move.to, "t"),
          value: task?.value,
          priority: task?.priority,
          recorded: { from: move.from },
          from: [...owners],
          blockers: [...owners].map((owner) => keys.status(owner, "t")),
        });
        // A hold with no blocker would never be released.
        expect(decision.put.blockers.length).toBeGreaterThan(0);
      }),
    );
  });

  it("a record whose history is compacted never finishes onto an unregistered, cordoned, draining, ineligible or affinity-breaking target", () => {
    fc.assert(
      fc.property(record, facts, (move, known) => {
        const decision = decideMove(keys, "t", move, "compacted", known);
        if (decision.action === "delete") return;
        const { target: to, generated: task } = known;
        expect(to).toBeDefined();
        expect(to?.mode).toBeUndefined();
        const labels = to?.labels ?? {};
        if (task?.task.selector) expect(labels.zone).toBe("a");
        if (task?.task.spread) expect(Object.keys(labels)).toContain(task.task.spread.label);
        expect(known.antiKeyWorkers).not.toContain(move.to);
        for (const other of known.keyWorkers) expect(other).toBe(move.to);
      }),
    );
  });

  it("a genuine move always finishes as recorded, waiting for its old owner", () => {
    fc.assert(
      fc.property(record, fc.option(facts, { nil: undefined }), (move, known) => {
        const decision = decideMove(keys, "t", move, "genuine", known);
        expect(decision).toEqual({
          action: "finish",
          put: {
            taskId: "t",
            worker: move.to,
            key: keys.task(move.to, "t"),
            value: move.value,
            priority: move.priority ?? 0,
            recorded: { from: move.from },
            from: [move.from],
            blockers: [keys.status(move.from, "t")],
          },
        });
      }),
    );
  });

  it("a genuine move whose history is compacted finishes while its task is still generated for its target and assigned nowhere, and its target may take it", () => {
    fc.assert(
      fc.property(record, generated, workers, workers, (move, task, reportedBy, antiKeyWorkers) => {
        fc.pre(move.from !== move.to && !task.exclude.includes(move.to));
        const decision = decideMove(keys, "t", move, "compacted", {
          assignedTo: [],
          reportedBy,
          generated: task,
          target: goodTarget,
          keyWorkers: [move.to],
          antiKeyWorkers: antiKeyWorkers.filter((other) => other !== move.to),
        });
        expect(decision.action).toBe("finish");
      }),
    );
  });

  it("a forged record, or one whose history is compacted while the generator failed, is deleted", () => {
    fc.assert(
      fc.property(record, facts, fc.string({ minLength: 1 }), (move, known, error) => {
        expect(decideMove(keys, "t", move, "forged", known).action).toBe("delete");
        const failed = { ...known, generatorError: error };
        expect(decideMove(keys, "t", move, "compacted", failed).action).toBe("delete");
      }),
    );
  });
});
