import { describe, expect, it } from "vitest";
import { silentLogger } from "../../../src/node/index.js";
import { Incarnation } from "../../../src/worker/incarnation.js";

const start = () => new Incarnation("fp", 1, Date.now(), { taskLogger: silentLogger }, "w1");

// Test modules are ESM, so strict: an assignment to a getter without a setter would throw here.
describe("a start's context", () => {
  it("takes a handler's own logger and signal, as a plain object would, on that context only", () => {
    const first = start();
    const other = start();
    const logger = silentLogger.child({ mine: true });
    const controller = new AbortController();
    const own = AbortSignal.any([first.ctx.signal, controller.signal]);
    first.ctx.logger = logger;
    first.ctx.signal = own;
    expect(first.ctx.logger).toBe(logger);
    expect(first.ctx.signal).toBe(own);
    expect({ ...first.ctx }).toEqual({ signal: own, logger, worker: "w1" });
    expect(other.ctx.logger).toBe(silentLogger);
    expect(other.ctx.signal).not.toBe(own);
  });

  it("still aborts the signal the handler read before replacing it", () => {
    const incarnation = start();
    const original = incarnation.ctx.signal;
    incarnation.ctx.signal = AbortSignal.any([original]);
    const reason = new Error("stop");
    incarnation.abort(() => reason);
    expect(original.aborted).toBe(true);
    expect(original.reason).toBe(reason);
    expect(incarnation.ctx.signal.aborted).toBe(true);
  });

  it("makes the reason of a stop only when the handler reads the signal, once", () => {
    const incarnation = start();
    let made = 0;
    const reason = new Error("stop");
    incarnation.abort(() => (made++, reason));
    incarnation.abort(() => new Error("a later reason"));
    expect(incarnation.aborted).toBe(true);
    expect(made).toBe(0);
    expect(incarnation.ctx.signal.aborted).toBe(true);
    expect(incarnation.ctx.signal.reason).toBe(reason);
    expect(incarnation.ctx.signal.reason).toBe(reason);
    expect(made).toBe(1);
  });
});
