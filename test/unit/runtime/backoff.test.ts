import { describe, expect, it } from "vitest";
import { delay, exponentialBackoff, untilAborted } from "../../../src/runtime/index.js";

describe("waits and backoff (cockatiel, node:timers/promises, events.once)", () => {
  it("backs off exponentially within the upper half of each step, capped, and starts over on reset", () => {
    const backoff = exponentialBackoff({ initialMs: 100, maxMs: 1_000 });
    const steps = [100, 200, 400, 800, 1_000, 1_000];
    for (const step of steps) {
      const wait = backoff.next();
      expect(wait).toBeGreaterThanOrEqual(step / 2);
      expect(wait).toBeLessThanOrEqual(step);
    }
    backoff.reset();
    expect(backoff.next()).toBeLessThanOrEqual(100);
  });

  it("delay resolves after its time, and rejects with the signal's own reason when aborted first", async () => {
    const started = performance.now();
    await delay(20);
    expect(performance.now() - started).toBeGreaterThanOrEqual(19);
    const reason = new Error("stopping");
    const controller = new AbortController();
    const waiting = delay(60_000, controller.signal);
    controller.abort(reason);
    await expect(waiting).rejects.toBe(reason);
    await expect(delay(10, AbortSignal.abort(reason))).rejects.toBe(reason);
  });

  it("untilAborted resolves when the signal aborts, and at once when it already has", async () => {
    await untilAborted(AbortSignal.abort());
    const controller = new AbortController();
    let done = false;
    const waiting = untilAborted(controller.signal).then(() => {
      done = true;
    });
    await delay(5);
    expect(done).toBe(false);
    controller.abort();
    await waiting;
    expect(done).toBe(true);
  });
});
