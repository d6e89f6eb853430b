import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { silentLogger, type Task, type TaskStatus } from "../../../src/node/index.js";
import { type StartStopHandler, type TaskContext, taskLauncher } from "../../../src/worker/handler.js";
import { CLAIMED, NOT_CLAIMED, type StatusSink } from "../../../src/worker/status-publisher.js";
import { TaskRunner, type TaskSpec } from "../../../src/worker/task-runner.js";
import { scheduledModelRun } from "../../helpers/model-run.js";

/**
 * Invariants of one task id's runner, whatever order the handler's starts and stops and the status
 * writes complete in (fc.scheduler picks it) and whatever the master does meanwhile (fc.commands):
 * - never two incarnations of the task at once (a start is called only once the previous one stopped);
 * - once everything has settled, with the task key present: exactly one incarnation runs, its signal
 *   not aborted, of the value the key holds; the runner and its stored status both say `running`;
 * - once everything has settled, with the key absent: nothing runs, the state is `stopped`, no status.
 * On the old code the second invariant fails (defect 4): a key deleted and put back during a start or
 * a status flush leaves the aborted incarnation counted as running.
 *
 * And of the context each start gets, its signal made only when first read: whenever the handler
 * reads it (at start, some steps later, only at stop, or never), its stop is called only once the
 * signal it sees is aborted with the stop's reason; a listener added before the abort hears it
 * once, before the stop; every read gives the same signal; the context's own keys (what a spread
 * copies) are all three of it.
 */

/** When a handler reads its context's signal: in start(), some scheduled steps after, in stop(), or never. */
type SignalRead = "start" | "later" | "stop" | "never";

/** The master's side: the task key as etcd holds it (undefined: deleted). */
interface Model {
  key?: { payload: string; revision: number };
  revision: number;
}

/** The worker's side under test, with a handler and a status sink whose every step the scheduler orders. */
interface Real {
  runner: TaskRunner;
  /** Incarnations between their start() call and the end of their stop(). */
  live: Set<TaskContext>;
  payloadOf: Map<TaskContext, string>;
  stored?: TaskStatus;
  overlaps: number;
  /** The task key's revision as etcd holds it now (0: absent), for claims. */
  keyRevision: number;
  /** What each start's signal looked like, as its handler saw it. */
  signals: SignalSeen[];
}

interface SignalSeen {
  /** The signal at each read. */
  reads: AbortSignal[];
  abortedAtFirstRead?: boolean;
  /** Abort events heard by the listener added at the first read, and how many of them came before stop(). */
  heard: number;
  heardBeforeStop: number;
  /** At stop(): aborted, and the reason's code. */
  atStop?: { aborted: boolean; code: unknown };
  /** The context's own enumerable keys (what `{ ...ctx }` copies), read without reading the values. */
  keys: string[];
}

function spec(payload: string, revision: number): TaskSpec {
  const task: Task = { id: "t1", payload };
  return { task, fingerprint: JSON.stringify(task), revision };
}

function setup(s: fc.Scheduler, reads: SignalRead[] = ["never"]): () => { model: Model; real: Real } {
  return () => {
    const real = {
      live: new Set(),
      payloadOf: new Map(),
      overlaps: 0,
      keyRevision: 0,
      signals: [],
    } as unknown as Real;
    const seenOf = new Map<TaskContext, SignalSeen>();
    const read = (ctx: TaskContext) => {
      const seen = seenOf.get(ctx) as SignalSeen;
      const signal = ctx.signal;
      if (seen.reads.length === 0) {
        seen.abortedAtFirstRead = signal.aborted;
        signal.addEventListener("abort", () => {
          seen.heard++;
          if (!seen.atStop) seen.heardBeforeStop++;
        });
      }
      seen.reads.push(signal);
    };
    const handler: StartStopHandler = {
      start: async (task, ctx) => {
        if (real.live.size > 0) real.overlaps++;
        real.live.add(ctx);
        real.payloadOf.set(ctx, String(task.payload));
        const when = reads[real.signals.length % reads.length];
        const seen: SignalSeen = { reads: [], heard: 0, heardBeforeStop: 0, keys: Object.keys(ctx) };
        real.signals.push(seen);
        seenOf.set(ctx, seen);
        if (when === "start") read(ctx);
        if (when === "later") void s.schedule(Promise.resolve(), "read signal").then(() => read(ctx));
        await s.schedule(Promise.resolve(), `start ${String(task.payload)}`);
      },
      stop: async (task, ctx) => {
        const seen = seenOf.get(ctx) as SignalSeen;
        if (reads[real.signals.indexOf(seen) % reads.length] !== "never") read(ctx);
        const reason = (ctx.signal.reason ?? {}) as { code?: unknown };
        seen.atStop = { aborted: ctx.signal.aborted, code: reason.code };
        await s.schedule(Promise.resolve(), `stop ${String(task.payload)}`);
        real.live.delete(ctx);
      },
    };
    const sink: StatusSink = {
      put: async (_id, status) => {
        await s.schedule(Promise.resolve(), `put ${status.state}`);
        real.stored = status;
      },
      remove: async () => {
        await s.schedule(Promise.resolve(), "remove");
        real.stored = undefined;
      },
      // Stored only while the task key is still at the claimed revision, as etcd's compare does.
      claim: async (_id, status, revision) => {
        await s.schedule(Promise.resolve(), `claim ${status.state}@${revision}`);
        if (revision !== real.keyRevision) return NOT_CLAIMED;
        real.stored = status;
        return CLAIMED;
      },
    };
    real.runner = new TaskRunner({
      taskId: "t1",
      worker: "w1",
      launcher: taskLauncher(handler),
      status: sink,
      logger: silentLogger,
      stopTimeoutMs: 60_000,
      retry: { initialMs: 1, maxMs: 1 },
    });
    return { model: { revision: 0 }, real };
  };
}

/** The master writes the task key (a new value, or the same value again at a new revision). */
class PutKey implements fc.AsyncCommand<Model, Real> {
  constructor(readonly payload: string) {}
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    model.revision++;
    model.key = { payload: this.payload, revision: model.revision };
    real.keyRevision = model.revision;
    real.runner.set(spec(this.payload, model.revision));
  }
  toString = () => `put(${this.payload})`;
}

/** The master deletes the task key (a drain, a move). */
class DeleteKey implements fc.AsyncCommand<Model, Real> {
  check = (model: Readonly<Model>) => model.key !== undefined;
  async run(model: Model, real: Real): Promise<void> {
    model.key = undefined;
    real.keyRevision = 0;
    real.runner.set(undefined);
  }
  toString = () => "delete";
}

/** Runs `cmds` in the order `s` picks, then waits until everything has settled. */
async function settle(
  s: fc.Scheduler,
  init: () => { model: Model; real: Real },
  cmds: Iterable<fc.AsyncCommand<Model, Real>>,
) {
  const { model, real } = await scheduledModelRun(s, init, cmds);
  await s.waitIdle();
  await real.runner.idle();
  await s.waitIdle();
  return { model, real };
}

const commands = fc.commands(
  [fc.constantFrom("a", "b").map((payload) => new PutKey(payload)), fc.constant(new DeleteKey())],
  { maxCommands: 8 },
);

describe("TaskRunner, any interleaving (property)", () => {
  it("never runs two incarnations at once, and settles on exactly what the task key says", async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), commands, async (s, cmds) => {
        const { model, real } = await settle(s, setup(s), cmds);
        expect(real.overlaps).toBe(0);
        if (model.key) {
          const live = [...real.live];
          expect(live.map((ctx) => [real.payloadOf.get(ctx), ctx.signal.aborted])).toEqual([
            [model.key.payload, false],
          ]);
          expect(real.runner.state).toBe("running");
          expect(real.stored?.state).toBe("running");
        } else {
          expect(real.live.size).toBe(0);
          expect(real.runner.state).toBe("stopped");
          expect(real.stored).toBeUndefined();
        }
      }),
      { numRuns: 300 },
    );
  });

  it("hands each start a signal aborted with the stop's reason before its stop, whenever the handler reads it", async () => {
    const reads = fc.array(fc.constantFrom<SignalRead>("start", "later", "stop", "never"), {
      minLength: 1,
      maxLength: 4,
    });
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), commands, reads, async (s, cmds, when) => {
        const { model, real } = await settle(s, setup(s, when), cmds);
        // Every start but the one left running (the last, when the key is there) was stopped.
        const running = model.key ? real.signals.slice(-1) : [];
        for (const seen of real.signals) {
          expect(seen.keys.sort()).toEqual(["logger", "signal", "worker"]);
          expect(new Set(seen.reads).size).toBeLessThanOrEqual(1);
          if (running.includes(seen)) {
            expect([seen.atStop, seen.heard, seen.reads[0]?.aborted ?? false]).toEqual([undefined, 0, false]);
            continue;
          }
          expect(seen.atStop).toEqual({ aborted: true, code: "ERR_ABORTED" });
          // Heard once, before the stop, when listened to before the abort; never when read after it.
          const listened = seen.reads.length > 0 && !seen.abortedAtFirstRead;
          expect([seen.heard, seen.heardBeforeStop]).toEqual(listened ? [1, 1] : [0, 0]);
        }
      }),
      { numRuns: 300 },
    );
  });
});
