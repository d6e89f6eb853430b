import { describe, expect, it } from "vitest";
import { assertValidName, KeyLayout, prefixRangeEnd } from "../../../src/node/keys.js";

describe("key layout", () => {
  const keys = new KeyLayout("prod");

  it("builds every key under /<root>/", () => {
    expect(keys.worker("w1")).toBe("/prod/worker/w1");
    expect(keys.task("w1", "t-9")).toBe("/prod/task/w1/t-9");
    expect(keys.status("w1", "t-9")).toBe("/prod/status/w1/t-9");
    expect(keys.barrierLeft).toBe("/prod/worker_barrier_left");
    expect(keys.plan).toBe("/prod/plan");
    expect(keys.electionPrefix.startsWith("/prod/")).toBe(true);
    expect(keys.barrierPrefix).toBe("/prod/barrier/");
    expect(keys.workerSlot(7)).toBe("/prod/slot/7");
  });

  it("parses worker slot keys and rejects anything else under the slot prefix", () => {
    expect(keys.parseWorkerSlot(keys.workerSlot(0))).toBe(0);
    expect(keys.parseWorkerSlot(keys.workerSlot(499))).toBe(499);
    expect(keys.parseWorkerSlot("/prod/slot/07")).toBeUndefined();
    expect(keys.parseWorkerSlot("/prod/slot/x")).toBeUndefined();
    expect(keys.parseWorkerSlot("/other/slot/1")).toBeUndefined();
    expect(() => keys.workerSlot(-1)).toThrow(/invalid worker slot/);
  });

  it("parses what it builds (round trip), including unicode and dots", () => {
    for (const [worker, task] of [
      ["10.0.0.1-42", "job:1"],
      ["wörker", "täsk with spaces"],
      ["a", "x".repeat(200)],
    ]) {
      expect(keys.parseTask(keys.task(worker, task))).toEqual({ worker, taskId: task });
      expect(keys.parseStatus(keys.status(worker, task))).toEqual({ worker, taskId: task });
      expect(keys.parseWorker(keys.worker(worker))).toBe(worker);
    }
  });

  it("does not parse keys of another root or kind", () => {
    expect(keys.parseTask("/other/task/w/t")).toBeUndefined();
    expect(keys.parseTask("/prod/status/w/t")).toBeUndefined();
    expect(keys.parseTask("/prod/task/w")).toBeUndefined();
    expect(keys.parseWorker("/prod/worker/a/b")).toBeUndefined();
  });

  it.each([
    ["", "must not be empty"],
    ["a/b", 'must not contain "/"'],
    ["tab\there", "control characters"],
    ["x".repeat(201), "at most 200"],
  ])("rejects the task id %j naming it", (bad, reason) => {
    expect(() => keys.task("w", bad)).toThrow(reason);
    expect(() => keys.task("w", bad)).toThrow(JSON.stringify(bad));
  });

  it("rejects bad worker names with ERR_BAD_NAME", () => {
    expect(() => assertValidName("worker name", "a/b")).toThrow(
      expect.objectContaining({ code: "ERR_BAD_NAME" }),
    );
  });

  it("builds and parses the operator keys (cordon, draining, paused, request, history)", () => {
    expect(keys.cordon("w1")).toBe("/prod/cordon/w1");
    expect(keys.draining("w1")).toBe("/prod/draining/w1");
    expect(keys.paused).toBe("/prod/paused");
    expect(keys.request("r-1")).toBe("/prod/request/r-1");
    expect(keys.history(42)).toBe("/prod/history/0000000000000042");
    expect(keys.parseCordon(keys.cordon("wörker"))).toBe("wörker");
    expect(keys.parseDraining(keys.draining("w1"))).toBe("w1");
    expect(keys.parseRequest(keys.request("r-1"))).toBe("r-1");
    expect(keys.parseHistory(keys.history(Number.MAX_SAFE_INTEGER))).toBe(Number.MAX_SAFE_INTEGER);
    expect(keys.parseHistory("/prod/history/42")).toBeUndefined();
    expect(keys.parseCordon(keys.draining("w1"))).toBeUndefined();
    // Keys sort in revision order.
    expect(keys.history(9) < keys.history(10)).toBe(true);
  });

  it("rejects bad operator key parts with ERR_BAD_NAME", () => {
    for (const build of [
      () => keys.cordon("a/b"),
      () => keys.draining(""),
      () => keys.request("x\n"),
      () => keys.history(-1),
      () => keys.history(1.5),
      () => keys.history(1e16),
    ]) {
      expect(build).toThrow(expect.objectContaining({ code: "ERR_BAD_NAME" }));
    }
  });

  it("computes etcd's prefix range end", () => {
    expect(prefixRangeEnd("/r/worker/").toString()).toBe("/r/worker0");
    expect(prefixRangeEnd("a").toString()).toBe("b");
  });
});
