import { describe, expect, it } from "vitest";
import { keyLayout } from "../../../src/node/index.js";
import {
  deposedWriteProblems,
  type HistoryEvent,
  pausedWriteProblems,
  pauseWindows,
  stalledMoveProblems,
} from "../../invariants/index.js";

const keys = keyLayout("inv");

/** A history from compact lines: [revision, "put"|"delete", key, value?]. */
function history(...lines: Array<[number, "put" | "delete", string, string?]>): HistoryEvent[] {
  return lines.map(([revision, type, key, value = ""]) => ({
    type,
    key,
    value,
    revision,
    modRevision: type === "put" ? revision : undefined,
    synthetic: false,
    seenAt: 0,
  }));
}

const campaign = (lease: string) => `${keys.electionCandidatesPrefix}${lease}`;
const plan = (leader: string) =>
  JSON.stringify({ epoch: 1, leader, at: "", workers: [], tasks: 0, moved: 0 });

describe("no schedule write while paused (pausedWriteProblems)", () => {
  const before = history(
    [2, "put", keys.task("w1", "t1"), "{}"],
    [3, "put", keys.task("w1", "t2"), "{}"],
    // A hand-off begun: t2 removed from w1, not yet written to its new owner.
    [4, "delete", keys.task("w1", "t2")],
    [5, "put", keys.paused, "{}"],
  );

  it("a task added, removed or a plan written after the pause was written is a violation", () => {
    const problems = pausedWriteProblems(
      [
        ...before,
        ...history(
          [6, "put", keys.task("w2", "t3"), "{}"],
          [7, "delete", keys.task("w1", "t1")],
          [8, "put", keys.plan, plan("m1")],
        ),
      ],
      keys,
    );
    expect(problems).toHaveLength(3);
    expect(problems[0]).toMatch(/put of \/inv\/task\/w2\/t3 at revision 6, while schedules were paused/);
  });

  it("completing a hand-off begun before the pause is allowed, once", () => {
    const completed = [...before, ...history([6, "put", keys.task("w2", "t2"), "{}"])];
    expect(pausedWriteProblems(completed, keys)).toEqual([]);
    const again = [...completed, ...history([7, "put", keys.task("w3", "t2"), "{}"])];
    expect(pausedWriteProblems(again, keys)).toHaveLength(1);
  });

  it("writes after resume deleted the pause are allowed, and the windows are reported", () => {
    const resumed = [
      ...before,
      ...history(
        [6, "delete", keys.paused],
        [7, "put", keys.task("w2", "t3"), "{}"],
        [8, "put", keys.plan, "{}"],
      ),
    ];
    expect(pausedWriteProblems(resumed, keys)).toEqual([]);
    expect(pauseWindows(resumed, keys)).toEqual([{ from: 5, to: 6 }]);
  });
});

describe("no write by a deposed leader (deposedWriteProblems)", () => {
  it("a write while the leader was dead is a violation, but not one by a restarted master of the same name", () => {
    const events = history(
      [2, "put", campaign("a"), "m1"],
      [3, "put", keys.plan, plan("m1")],
      // m1 killed at revision 4; its campaign key is still there until its lease expires.
      [5, "put", keys.task("w1", "t1"), "{}"],
      [6, "delete", campaign("a")],
      [7, "put", campaign("b"), "m1"],
      [8, "put", keys.plan, plan("m1")],
    );
    const problems = deposedWriteProblems(events, keys, [{ name: "m1", fromRevision: 4 }]);
    expect(problems).toEqual([
      "put of /inv/task/w1/t1 at revision 5, while the leader m1 was paused or dead: a deposed master wrote it",
    ]);
  });

  it("a write seen within the allowance past the heal of an isolation the silence overlapped was in flight; one seen after it is a violation", () => {
    const seen = (events: HistoryEvent[], at: number[]) =>
      events.map((event, i) => ({ ...event, seenAt: at[i] }));
    const events = seen(
      history(
        [2, "put", campaign("a"), "m1"],
        [5, "delete", keys.task("w1", "t1")],
        [6, "delete", keys.task("w1", "t2")],
      ),
      [0, 1_500, 2_500],
    );
    const problems = deposedWriteProblems(events, keys, [
      { name: "m1", fromRevision: 4, from: 0, inFlightUntil: 2_000 },
    ]);
    expect(problems).toEqual([
      "delete of /inv/task/w1/t2 at revision 6, while the leader m1 was paused or dead (seen 2500 ms after it fell silent): a deposed master wrote it",
    ]);
  });

  it("a plan or history record naming a master that did not lead then is a violation", () => {
    const events = history(
      [2, "put", campaign("a"), "m1"],
      [3, "put", campaign("b"), "m2"],
      [4, "put", keys.plan, plan("m2")],
      [5, "put", keys.history(4), plan("m1")],
    );
    const problems = deposedWriteProblems(events, keys, []);
    expect(problems).toEqual([
      "put of /inv/plan at revision 4 names the leader m2, but m1 led then: a deposed master wrote it",
    ]);
  });

  it("a leader-only write when no master led is a violation", () => {
    expect(deposedWriteProblems(history([2, "put", keys.barrierLeft, "now"]), keys, [])).toEqual([
      "put of /inv/worker_barrier_left at revision 2, when no master led",
    ]);
  });
});

describe("a move begun always finishes (stalledMoveProblems)", () => {
  const seen = (events: HistoryEvent[], at: number[]) =>
    events.map((event, i) => ({ ...event, seenAt: at[i] }));
  const generator = [{ at: 0, tasks: ["t1", "t2"] }];

  it("a generated task removed and written nowhere within the bound is a violation", () => {
    const events = seen(
      history([2, "put", keys.task("w1", "t1"), "{}"], [3, "delete", keys.task("w1", "t1")]),
      [1_000, 20_000],
    );
    const problems = stalledMoveProblems(events, keys, generator, 5_000, 60_000);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/task t1 removed from w1 at revision 3 .* never written again/);
  });

  it("a move finished within the bound, a task no longer generated, or a removal too recent to judge is not", () => {
    const moved = seen(
      history([3, "delete", keys.task("w1", "t1")], [4, "put", keys.task("w2", "t1"), "{}"]),
      [20_000, 24_000],
    );
    expect(stalledMoveProblems(moved, keys, generator, 5_000, 60_000)).toEqual([]);
    const dropped = [...generator, { at: 19_000, tasks: ["t2"] }];
    const removed = seen(history([3, "delete", keys.task("w1", "t1")]), [20_000]);
    expect(stalledMoveProblems(removed, keys, dropped, 5_000, 60_000)).toEqual([]);
    expect(stalledMoveProblems(removed, keys, generator, 5_000, 22_000)).toEqual([]);
  });

  it("a move whose put shares the removal's transaction is finished, even when seen a millisecond earlier", () => {
    // A move off a gone worker: one transaction puts the new owner's key and deletes the old one.
    const direct = seen(
      history(
        [2, "put", keys.task("w1", "t1"), "{}"],
        [3, "put", keys.task("w2", "t1"), "{}"],
        [3, "delete", keys.task("w1", "t1")],
      ),
      [1_000, 20_000, 20_001],
    );
    expect(stalledMoveProblems(direct, keys, generator, 5_000, 60_000)).toEqual([]);
    // A put of an earlier revision, however late it was seen, finishes nothing.
    const earlier = seen(
      history([2, "put", keys.task("w2", "t1"), "{}"], [3, "delete", keys.task("w1", "t1")]),
      [20_002, 20_001],
    );
    expect(stalledMoveProblems(earlier, keys, generator, 5_000, 60_000)).toEqual([
      expect.stringMatching(/task t1 removed from w1 at revision 3 .* never written again/),
    ]);
  });
});
