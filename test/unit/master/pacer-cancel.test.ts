import { describe, expect, it } from "vitest";
import type { LeaderWriter } from "../../../src/master/fencing.js";
import type { HandoffGate } from "../../../src/master/handoff.js";
import { type Move, MovePacer } from "../../../src/master/pacing.js";
import { KeyLayout, silentLogger } from "../../../src/node/index.js";

const keys = new KeyLayout("r");

function move(taskId: string): Move {
  const removal = { type: "delete" as const, key: keys.task("w1", taskId) };
  return {
    from: "w1",
    removal,
    put: { taskId, worker: "w2", key: keys.task("w2", taskId), value: "{}", priority: 0 },
  };
}

/** A writer whose transactions wait until their signal aborts, then fail with its reason (as the fenced writer does). */
function stalledWriter(): { writer: LeaderWriter; applying: () => number } {
  let applying = 0;
  const apply = (_ops: unknown, options: { signal?: AbortSignal }) => {
    applying++;
    return new Promise<never>((_, reject) => {
      const signal = options.signal;
      if (signal?.aborted) reject(signal.reason);
      signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
    });
  };
  return { writer: { apply } as unknown as LeaderWriter, applying: () => applying };
}

describe("MovePacer: dropping the queue", () => {
  it("a start cut short by cancelPending() (a newer schedule dropping the queue) reports no failure to any refill waiting on it", async () => {
    const failures: unknown[] = [];
    const gate = { unsettled: 0, holdBegun: () => undefined } as unknown as HandoffGate;
    const { writer, applying } = stalledWriter();
    const pacer = new MovePacer(keys, gate, writer, {
      logger: silentLogger,
      onFailed: (error) => failures.push(error),
    });
    const term = new AbortController();
    const paced = pacer.pace([move("t1"), move("t2"), move("t3")], 1, term.signal);
    // Finished hand-offs ask for the next moves while the start is still being written.
    for (let i = 0; i < 5; i++) pacer.refill(term.signal);
    await new Promise((resolve) => setImmediate(resolve));
    expect(applying()).toBe(1);
    await pacer.cancelPending();
    await paced.catch(() => undefined);
    await new Promise((resolve) => setImmediate(resolve));
    expect(failures).toEqual([]);
    expect(pacer.queued).toBe(0);
  });

  it("a start that fails for another reason is still reported", async () => {
    const failures: unknown[] = [];
    const gate = { unsettled: 0, holdBegun: () => undefined } as unknown as HandoffGate;
    const broken = new Error("etcd refused");
    const writer = { apply: () => Promise.reject(broken) } as unknown as LeaderWriter;
    const pacer = new MovePacer(keys, gate, writer, {
      logger: silentLogger,
      onFailed: (error) => failures.push(error),
    });
    const term = new AbortController();
    // The first start fails for pace's caller; the next, asked for by a finished hand-off, for onFailed.
    await expect(pacer.pace([move("t1"), move("t2")], 1, term.signal)).rejects.toBe(broken);
    pacer.refill(term.signal);
    await new Promise((resolve) => setImmediate(resolve));
    expect(failures).toEqual([broken]);
  });
});
