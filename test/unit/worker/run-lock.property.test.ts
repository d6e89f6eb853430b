import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { silentLogger, type Task, type TaskStatus } from "../../../src/node/index.js";
import { type StartStopHandler, type TaskContext, taskLauncher } from "../../../src/worker/handler.js";
import {
  CLAIMED,
  type ClaimResult,
  NOT_CLAIMED,
  type StatusSink,
} from "../../../src/worker/status-publisher.js";
import { TaskRunner, type TaskSpec } from "../../../src/worker/task-runner.js";
import { scheduledModelRun } from "../../helpers/model-run.js";

/**
 * One task assigned to two workers at once (a script, a restore, a leader bug), whatever the order
 * of the claims, status writes, starts and stops (fc.scheduler) and of the task key writes
 * (fc.commands). The sinks keep one run lock per task as etcd does: a claim takes it unless another
 * worker holds it; a status deletion releases it. Invariants:
 * - the task never runs on both workers at once;
 * - once everything settled, with a copy of the key anywhere: exactly one worker runs it (the lock
 *   holder, with its own copy's value); the other, if it has a copy, shows `failed` naming the holder;
 * - with no copy left: nothing runs, no lock, no status.
 * The retry backoff is an hour: only the lock's release can start a blocked copy.
 * Without the lock (the claim of old), the first invariant fails: the check below finds it.
 */

const WORKERS = ["w1", "w2"] as const;
type Name = (typeof WORKERS)[number];

interface Model {
  keys: Map<Name, string>;
}

interface Real {
  runners: Map<Name, TaskRunner>;
  /** Incarnations between their start() call and the end of their stop(), with their worker and payload. */
  live: Map<TaskContext, { worker: Name; payload: string }>;
  overlaps: number;
  keyRevision: Map<Name, number>;
  revision: number;
  statuses: Map<Name, TaskStatus>;
  lock?: Name;
  /** Bumped at each change of the lock, which wakes the claims waiting on it. */
  lockVersion: number;
  waiters: Set<() => void>;
}

function setup(s: fc.Scheduler, enforceLock: boolean): () => { model: Model; real: Real } {
  return () => {
    const real: Real = {
      runners: new Map(),
      live: new Map(),
      overlaps: 0,
      keyRevision: new Map(),
      revision: 0,
      statuses: new Map(),
      lockVersion: 0,
      waiters: new Set(),
    };
    const setLock = (holder: Name | undefined) => {
      if (real.lock === holder) return;
      real.lock = holder;
      real.lockVersion++;
      for (const wake of [...real.waiters]) wake();
    };
    const released = (seen: number) => (signal: AbortSignal) =>
      new Promise<void>((resolve, reject) => {
        const wake = () => {
          real.waiters.delete(wake);
          resolve();
        };
        if (real.lockVersion !== seen) return resolve();
        real.waiters.add(wake);
        signal.addEventListener("abort", () => {
          real.waiters.delete(wake);
          reject(signal.reason);
        });
      });
    for (const worker of WORKERS) {
      const handler: StartStopHandler = {
        start: async (task, ctx) => {
          if ([...real.live.values()].some((run) => run.worker !== worker)) real.overlaps++;
          real.live.set(ctx, { worker, payload: String(task.payload) });
          await s.schedule(Promise.resolve(), `${worker} start ${String(task.payload)}`);
        },
        stop: async (task, ctx) => {
          await s.schedule(Promise.resolve(), `${worker} stop ${String(task.payload)}`);
          real.live.delete(ctx);
        },
      };
      const sink: StatusSink = {
        put: async (_id, status) => {
          await s.schedule(Promise.resolve(), `${worker} put ${status.state}`);
          real.statuses.set(worker, status);
        },
        remove: async () => {
          await s.schedule(Promise.resolve(), `${worker} remove`);
          real.statuses.delete(worker);
          if (real.lock === worker) setLock(undefined);
        },
        claim: async (_id, status, revision): Promise<ClaimResult> => {
          await s.schedule(Promise.resolve(), `${worker} claim@${revision}`);
          if (revision !== (real.keyRevision.get(worker) ?? 0)) return NOT_CLAIMED;
          const holder = real.lock;
          if (enforceLock && holder !== undefined && holder !== worker)
            return { claimed: false, heldBy: holder, released: released(real.lockVersion) };
          setLock(worker);
          real.statuses.set(worker, status);
          return CLAIMED;
        },
      };
      real.runners.set(
        worker,
        new TaskRunner({
          taskId: "t1",
          worker,
          launcher: taskLauncher(handler),
          status: sink,
          logger: silentLogger,
          stopTimeoutMs: 60_000,
          retry: { initialMs: 3_600_000, maxMs: 3_600_000 },
        }),
      );
    }
    return { model: { keys: new Map() }, real };
  };
}

function spec(payload: string, revision: number): TaskSpec {
  const task: Task = { id: "t1", payload };
  return { task, fingerprint: JSON.stringify(task), revision };
}

/** A copy of the task key is written under one worker (a new value, or the same again). */
class PutKey implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly worker: Name,
    readonly payload: string,
  ) {}
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    model.keys.set(this.worker, this.payload);
    real.keyRevision.set(this.worker, ++real.revision);
    real.runners.get(this.worker)?.set(spec(this.payload, real.revision));
  }
  toString = () => `put(${this.worker}, ${this.payload})`;
}

/** A worker's copy of the task key is deleted. */
class DeleteKey implements fc.AsyncCommand<Model, Real> {
  constructor(readonly worker: Name) {}
  check = (model: Readonly<Model>) => model.keys.has(this.worker);
  async run(model: Model, real: Real): Promise<void> {
    model.keys.delete(this.worker);
    real.keyRevision.delete(this.worker);
    real.runners.get(this.worker)?.set(undefined);
  }
  toString = () => `delete(${this.worker})`;
}

const commands = fc.commands(
  [
    fc
      .tuple(fc.constantFrom(...WORKERS), fc.constantFrom("a", "b"))
      .map(([worker, payload]) => new PutKey(worker, payload)),
    fc.constantFrom(...WORKERS).map((worker) => new DeleteKey(worker)),
  ],
  { maxCommands: 8 },
);

/** Runs scheduled steps until none is left and none appears over a few turns of the event loop. */
async function settle(s: fc.Scheduler): Promise<void> {
  for (let quiet = 0; quiet < 3;) {
    await s.waitIdle();
    await new Promise((resolve) => setTimeout(resolve, 1));
    quiet = s.count() === 0 ? quiet + 1 : 0;
  }
}

function property(enforceLock: boolean) {
  return fc.asyncProperty(fc.scheduler(), commands, async (s, cmds) => {
    const init = setup(s, enforceLock);
    const { model, real } = await scheduledModelRun(s, init, cmds);
    await settle(s);
    if (real.overlaps > 0) throw new Error(`t1 ran on both workers at once (${real.overlaps} starts)`);
    const runs = [...real.live.entries()].filter(([ctx]) => !ctx.signal.aborted).map(([, run]) => run);
    if (model.keys.size === 0) {
      expect(runs).toEqual([]);
      expect(real.lock).toBeUndefined();
      expect(real.statuses.size).toBe(0);
      return;
    }
    expect(runs).toHaveLength(1);
    const holder = runs[0]?.worker as Name;
    expect(runs[0]?.payload).toBe(model.keys.get(holder));
    expect(real.lock).toBe(holder);
    expect(real.runners.get(holder)?.state).toBe("running");
    expect(real.statuses.get(holder)?.state).toBe("running");
    const other = WORKERS.find((worker) => worker !== holder) as Name;
    if (model.keys.has(other)) {
      expect(real.runners.get(other)?.state).toBe("failed");
      expect(real.statuses.get(other)?.error).toContain(`run lock held by worker "${holder}"`);
    } else expect(real.statuses.has(other)).toBe(false);
  });
}

describe("one task assigned to two workers, any interleaving (property)", () => {
  it("runs on at most one worker at a time, and once settled on exactly one while any copy exists", async () => {
    await fc.assert(property(true), { numRuns: 300 });
  });

  it("without the run lock the check finds a double run (so the property above can fail)", async () => {
    const outcome = await fc.check(property(false), { numRuns: 300, seed: 19 });
    expect(outcome.failed).toBe(true);
    expect(String(outcome.errorInstance)).toContain("t1 ran on both workers at once");
  });
});
