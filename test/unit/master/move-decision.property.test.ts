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
const generated = fc.record({
  value: fc.string(),
  priority: fc.integer({ min: -5, max: 5 }),
  exclude: workers,
});
const facts: fc.Arbitrary<MoveFacts> = fc.record(
  {
    assignedTo: workers,
    reportedBy: workers,
    generated: generated as fc.Arbitrary<GeneratedTask>,
    generatorError: fc.string({ minLength: 1 }),
  },
  { requiredKeys: ["assignedTo", "reportedBy"] },
);
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

  it("a genuine move whose history is compacted finishes while its task is still generated for its target and assigned nowhere", () => {
    fc.assert(
      fc.property(record, generated, workers, (move, task, reportedBy) => {
        fc.pre(move.from !== move.to && !task.exclude.includes(move.to));
        const decision = decideMove(keys, "t", move, "compacted", {
          assignedTo: [],
          reportedBy,
          generated: task,
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
