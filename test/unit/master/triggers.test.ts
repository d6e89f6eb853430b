import { afterEach, describe, expect, it, vi } from "vitest";
import { CoalescingRunner, Debouncer } from "../../../src/master/triggers.js";

/** A job whose runs finish only when the test says so. */
function controlledJob() {
  const runs: Array<{ reasons: string[]; finish: (value: number) => void; fail: (error: Error) => void }> =
    [];
  const run = (reasons: string[]) =>
    new Promise<number>((resolve, reject) => runs.push({ reasons, finish: resolve, fail: reject }));
  return { runs, run };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe("CoalescingRunner", () => {
  it("while paused, holds triggers as one run on resume and refuses waiting requests", async () => {
    const job = controlledJob();
    const runner = new CoalescingRunner(job.run);
    runner.pause();
    runner.trigger("interval");
    const waiting = runner.request("api");
    runner.pause(new Error("paused"));
    runner.trigger("workers");
    await expect(waiting).rejects.toThrow("paused");
    await settle();
    expect(job.runs).toHaveLength(0);
    runner.resume();
    await settle();
    expect(job.runs.map((r) => r.reasons)).toEqual([["interval", "api", "workers"]]);
    job.runs[0].finish(1);
  });

  it("runs at once when idle", async () => {
    const job = controlledJob();
    const runner = new CoalescingRunner(job.run);
    const result = runner.request("now");
    await settle();
    expect(job.runs.map((r) => r.reasons)).toEqual([["now"]]);
    job.runs[0].finish(1);
    await expect(result).resolves.toBe(1);
  });

  it("turns any number of triggers during a run into exactly one more run, dropping none", async () => {
    const job = controlledJob();
    const runner = new CoalescingRunner(job.run);
    runner.trigger("first");
    await settle();
    runner.trigger("workers");
    runner.trigger("interval");
    const waiting = runner.request("api");
    runner.trigger("workers");
    await settle();
    expect(job.runs).toHaveLength(1);
    job.runs[0].finish(1);
    await settle();
    expect(job.runs).toHaveLength(2);
    expect(job.runs[1].reasons).toEqual(["workers", "interval", "api"]);
    job.runs[1].finish(2);
    await expect(waiting).resolves.toBe(2);
    await settle();
    expect(job.runs).toHaveLength(2);
  });

  it("answers a request with the run that starts after it, not the one already running", async () => {
    const job = controlledJob();
    const runner = new CoalescingRunner(job.run);
    const first = runner.request("a");
    await settle();
    const second = runner.request("b");
    job.runs[0].finish(10);
    await expect(first).resolves.toBe(10);
    await settle();
    job.runs[1].finish(20);
    await expect(second).resolves.toBe(20);
  });

  it("rejects the requests of a failed run and keeps serving later ones", async () => {
    const job = controlledJob();
    const runner = new CoalescingRunner(job.run);
    const failing = runner.request("a");
    await settle();
    job.runs[0].fail(new Error("generator threw"));
    await expect(failing).rejects.toThrow("generator threw");
    const next = runner.request("b");
    await settle();
    job.runs[1].finish(3);
    await expect(next).resolves.toBe(3);
  });

  it("holds requests while paused and runs them once on resume", async () => {
    const job = controlledJob();
    const runner = new CoalescingRunner(job.run, { paused: true });
    runner.trigger("workers");
    const waiting = runner.request("api");
    await settle();
    expect(job.runs).toHaveLength(0);
    runner.resume();
    await settle();
    expect(job.runs.map((r) => r.reasons)).toEqual([["workers", "api"]]);
    job.runs[0].finish(5);
    await expect(waiting).resolves.toBe(5);
  });

  it("on close answers waiting requests with undefined, waits for the running one, and ignores new ones", async () => {
    const job = controlledJob();
    const runner = new CoalescingRunner(job.run);
    runner.trigger("a");
    await settle();
    const queued = runner.request("b");
    const closed = runner.close();
    await expect(queued).resolves.toBeUndefined();
    let isClosed = false;
    void closed.then(() => {
      isClosed = true;
    });
    await settle();
    expect(isClosed).toBe(false);
    job.runs[0].finish(1);
    await closed;
    await expect(runner.request("c")).resolves.toBeUndefined();
    expect(job.runs).toHaveLength(1);
  });
});

describe("Debouncer", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("acts once, after the wait following the last poke", () => {
    vi.useFakeTimers();
    const action = vi.fn();
    const debouncer = new Debouncer(100, action);
    for (let i = 0; i < 3; i++) {
      debouncer.poke();
      vi.advanceTimersByTime(50);
    }
    expect(action).not.toHaveBeenCalled();
    vi.advanceTimersByTime(50);
    expect(action).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(1_000);
    expect(action).toHaveBeenCalledTimes(1);
  });

  it("under pokes that never stop, acts every twice the wait (counted from the first poke it has not acted on)", () => {
    vi.useFakeTimers();
    const action = vi.fn();
    const debouncer = new Debouncer(100, action);
    const actedAt: number[] = [];
    action.mockImplementation(() => actedAt.push(Date.now()));
    const start = Date.now();
    for (let i = 0; i < 20; i++) {
      debouncer.poke();
      vi.advanceTimersByTime(50);
    }
    expect(actedAt.map((at) => at - start)).toEqual([200, 400, 600, 800, 1_000]);
    vi.advanceTimersByTime(1_000);
    expect(action).toHaveBeenCalledTimes(5);
  });

  it("does nothing after cancel", () => {
    vi.useFakeTimers();
    const action = vi.fn();
    const debouncer = new Debouncer(100, action);
    debouncer.poke();
    debouncer.cancel();
    vi.advanceTimersByTime(1_000);
    expect(action).not.toHaveBeenCalled();
    // Nor does a cancelled deadline cut short the next wait.
    debouncer.poke();
    vi.advanceTimersByTime(99);
    expect(action).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(action).toHaveBeenCalledTimes(1);
  });
});
