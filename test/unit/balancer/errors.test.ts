import { describe, expect, it } from "vitest";
import { PlanInputError, plan } from "../../../src/balancer/index.js";
import type { PlanInput } from "../../../src/balancer/types.js";

function failure(input: PlanInput): PlanInputError {
  try {
    plan(input);
  } catch (error) {
    expect(error).toBeInstanceOf(PlanInputError);
    expect((error as PlanInputError).code).toBe("ERR_BAD_PLAN_INPUT");
    return error as PlanInputError;
  }
  throw new Error("plan() accepted bad input");
}

describe("plan rejects bad input with ERR_BAD_PLAN_INPUT naming the culprit", () => {
  it.each([
    ["a task id generated twice", { workers: ["a"], tasks: [{ id: "x" }, { id: "x" }] }, '"x"'],
    ["a task id with a slash", { workers: ["a"], tasks: [{ id: "a/b" }] }, '"a/b"'],
    ["an empty task id", { workers: ["a"], tasks: [{ id: "" }] }, 'task id ""'],
    ["a task id with a control character", { workers: ["a"], tasks: [{ id: "a\nb" }] }, '"a\\nb"'],
    ["a task id over 200 characters", { workers: ["a"], tasks: [{ id: "x".repeat(201) }] }, "x".repeat(201)],
    ["a weight of 0", { workers: ["a"], tasks: [{ id: "w0", weight: 0 }] }, '"w0"'],
    ["a negative weight", { workers: ["a"], tasks: [{ id: "neg", weight: -1 }] }, '"neg"'],
    [
      "an infinite weight",
      { workers: ["a"], tasks: [{ id: "inf", weight: Number.POSITIVE_INFINITY }] },
      '"inf"',
    ],
    ["a NaN priority", { workers: ["a"], tasks: [{ id: "nan", priority: Number.NaN }] }, '"nan"'],
    ["an empty key", { workers: ["a"], tasks: [{ id: "k", key: "" }] }, '"k"'],
    ["no workers for the tasks", { workers: [], tasks: [{ id: "t" }] }, "workers"],
    ["a worker listed twice", { workers: ["a", { name: "a" }], tasks: [] }, '"a"'],
    ["a worker name with a slash", { workers: ["x/y"], tasks: [] }, '"x/y"'],
    ["a negative capacity", { workers: [{ name: "small", capacity: -1 }], tasks: [] }, '"small"'],
    ["a current list that is not ids", { workers: ["a"], tasks: [], current: { a: [1] } }, '"a"'],
  ] as Array<[string, PlanInput, string]>)("%s", (_, input, culprit) => {
    const error = failure(input);
    expect(error.culprit).toContain(culprit);
    expect(error.message).toContain(culprit);
  });

  it("never returns a partial plan: one bad task among many fails the whole call", () => {
    const tasks = [...Array.from({ length: 1000 }, (_, i) => ({ id: `t${i}` })), { id: "bad", weight: 0 }];
    expect(failure({ workers: ["a", "b"], tasks }).culprit).toContain('"bad"');
  });
});
