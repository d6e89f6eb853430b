import { describe, expect, it } from "vitest";
import { silentLogger, type Task } from "../../../src/node/index.js";
import { type StartStopHandler, type TaskContext, taskLauncher } from "../../../src/worker/handler.js";
import { TaskRunner, type TaskRunnerOptions, type TaskSpec } from "../../../src/worker/task-runner.js";
import { waitFor } from "../../helpers/context.js";
import { MemoryStatus } from "./memory-status.js";

/** A start/stop handler that records calls and can be told to fail or hang. */
function recordingHandler() {
  const calls: string[] = [];
  const control = {
    failStarts: 0,
    stopDelayMs: 0,
    startGate: undefined as Promise<void> | undefined,
    contexts: [] as TaskContext[],
  };
  const handler: StartStopHandler = {
    async start(task: Task, ctx: TaskContext) {
      control.contexts.push(ctx);
      calls.push(`start ${JSON.stringify(task.payload ?? null)}`);
      if (control.startGate) await control.startGate;
      if (control.failStarts > 0) {
        control.failStarts--;
        throw new Error("boom");
      }
    },
    async stop(task: Task) {
      calls.push(`stop ${JSON.stringify(task.payload ?? null)}`);
      if (control.stopDelayMs) await new Promise((resolve) => setTimeout(resolve, control.stopDelayMs));
      calls.push(`stopped ${JSON.stringify(task.payload ?? null)}`);
    },
  };
  return { handler, calls, control };
}

function spec(payload: unknown, revision = 1): TaskSpec {
  const task = { id: "t1", payload };
  return { task, fingerprint: JSON.stringify(task), revision };
}

function runner(handler: unknown, overrides: Partial<TaskRunnerOptions> = {}) {
  const status = new MemoryStatus();
  const settled: number[] = [];
  const task = new TaskRunner({
    taskId: "t1",
    worker: "w1",
    launcher: taskLauncher(handler),
    status,
    logger: silentLogger,
    stopTimeoutMs: 1_000,
    retry: { initialMs: 20, maxMs: 40 },
    onSettled: () => settled.push(Date.now()),
    ...overrides,
  });
  return { task, status, settled };
}

describe("TaskRunner", () => {
  it("reports starting then running, and hands the handler the task and its context", async () => {
    const { handler, calls, control } = recordingHandler();
    const { task, status } = runner(handler);
    task.set(spec({ n: 1 }));
    await task.idle();
    expect(calls).toEqual(['start {"n":1}']);
    expect(status.history).toEqual(["starting", "running"]);
    expect(status.current.get("t1")).toMatchObject({ state: "running", attempt: 1 });
    expect(control.contexts[0].worker).toBe("w1");
    expect(control.contexts[0].signal.aborted).toBe(false);
    expect(task.state).toBe("running");
  });

  it("shows a failed start with its error, then retries with backoff until it runs", async () => {
    const { handler, control } = recordingHandler();
    control.failStarts = 2;
    const { task, status } = runner(handler);
    task.set(spec(1));
    await waitFor("the task to run", () => task.state === "running");
    expect(status.history).toEqual([
      "starting",
      "failed(boom)",
      "starting",
      "failed(boom)",
      "starting",
      "running",
    ]);
    expect(status.current.get("t1")).toMatchObject({ state: "running", attempt: 3 });
  });

  it("stops a removed task and deletes its status once stopped (a stop that returns at once writes no stopping)", async () => {
    const { handler, calls } = recordingHandler();
    const { task, status, settled } = runner(handler);
    task.set(spec(1));
    await task.idle();
    task.set(undefined);
    await task.idle();
    expect(calls).toEqual(["start 1", "stop 1", "stopped 1"]);
    expect(status.history).toEqual(["starting", "running", "removed"]);
    expect(status.current.has("t1")).toBe(false);
    expect(task.state).toBe("stopped");
    expect(settled.length).toBe(1);
  });

  it("restarts a task whose payload changed: stop the old, then start the new", async () => {
    const { handler, calls } = recordingHandler();
    const { task, status } = runner(handler);
    task.set(spec("a"));
    await task.idle();
    task.set(spec("b"));
    await task.idle();
    expect(calls).toEqual(['start "a"', 'stop "a"', 'stopped "a"', 'start "b"']);
    // A restart in place still stores stopping: the status never says running between the two.
    expect(status.history).toEqual(["starting", "running", "stopping", "starting", "running"]);
  });

  it("reports stopping, locally at once and in etcd for a stop still under way, then deletes the status", async () => {
    const { handler, control } = recordingHandler();
    control.stopDelayMs = 50;
    const states: string[] = [];
    const { task, status } = runner(handler, { onState: (change) => states.push(change.state) });
    task.set(spec(1));
    await task.idle();
    task.set(undefined);
    await waitFor("the stopping status", () => status.current.get("t1")?.state === "stopping");
    await task.idle();
    expect(status.history).toEqual(["starting", "running", "stopping", "removed"]);
    expect(states).toEqual(["starting", "running", "stopping", "stopped"]);
  });

  it("does not restart a task set again with the same value", async () => {
    const { handler, calls } = recordingHandler();
    const { task } = runner(handler);
    task.set(spec("a"));
    await task.idle();
    task.set(spec("a"));
    await task.idle();
    expect(calls).toEqual(['start "a"']);
  });

  it("does not start a task whose key changed before its start was claimed", async () => {
    const { handler, calls } = recordingHandler();
    const { task, status } = runner(handler);
    status.staleRevisions.add(7);
    task.set(spec("a", 7));
    await task.idle();
    expect(calls).toEqual([]);
    expect(status.current.has("t1")).toBe(false);
    expect(status.history).toEqual(["claim refused"]);
  });

  it("starts once a rewrite of the same value brings a revision the claim can hold", async () => {
    const { handler, calls } = recordingHandler();
    const { task, status } = runner(handler);
    status.staleRevisions.add(7);
    task.set(spec("a", 7));
    await task.idle();
    task.set(spec("a", 9));
    await task.idle();
    expect(calls).toEqual(['start "a"']);
    expect(status.current.get("t1")?.state).toBe("running");
  });

  it("does not start a task whose run lock another worker holds: shows it failed naming the holder, and starts once the lock is released", async () => {
    const { handler, calls } = recordingHandler();
    const { task, status } = runner(handler, { retry: { initialMs: 60_000, maxMs: 60_000 } });
    status.setForeignLock("t1", "w2");
    task.set(spec("a"));
    await waitFor("the refusal to be shown", () => task.state === "failed");
    expect(calls).toEqual([]);
    expect(task.error).toBe('run lock held by worker "w2": the task runs there');
    expect(status.history).toEqual([
      "claim refused (locked by w2)",
      'failed(run lock held by worker "w2": the task runs there)',
    ]);

    // Released: claimed again at once, not after the 60 s backoff.
    status.setForeignLock("t1", undefined);
    await waitFor("the task to run", () => task.state === "running");
    expect(calls).toEqual(['start "a"']);
    expect(status.current.get("t1")).toMatchObject({ state: "running", attempt: 2 });
  });

  it("claims again after a held run lock changes hands, and stops waiting once the task is unassigned", async () => {
    const { handler, calls } = recordingHandler();
    const { task, status } = runner(handler, { retry: { initialMs: 60_000, maxMs: 60_000 } });
    status.setForeignLock("t1", "w2");
    task.set(spec("a"));
    await waitFor("the wait for the lock", () => status.lockWaits === 1);
    status.setForeignLock("t1", "w3");
    await waitFor("the refusal naming the new holder", () => task.error?.includes('"w3"'));
    expect(status.lockWaits).toBe(1);

    task.set(undefined);
    await task.idle();
    expect(status.lockWaits).toBe(0);
    expect(calls).toEqual([]);
    expect(status.current.has("t1")).toBe(false);
  });

  it("serialises operations: a removal during a slow start aborts its signal and stops it only after it started", async () => {
    const { handler, calls, control } = recordingHandler();
    let openGate!: () => void;
    control.startGate = new Promise((resolve) => {
      openGate = resolve;
    });
    const { task, status } = runner(handler);
    task.set(spec(1));
    await waitFor("start to be called", () => calls.length === 1);
    task.set(undefined);
    expect(control.contexts[0].signal.aborted).toBe(true);
    expect(calls).toEqual(["start 1"]);
    openGate();
    await task.idle();
    expect(calls).toEqual(["start 1", "stop 1", "stopped 1"]);
    expect(status.current.has("t1")).toBe(false);
  });

  it("keeps the status of a stop that overruns the stop timeout until the stop returns", async () => {
    const { handler, control } = recordingHandler();
    control.stopDelayMs = 300;
    const { task, status } = runner(handler, { stopTimeoutMs: 50 });
    task.set(spec(1));
    await task.idle();
    task.set(undefined);
    await new Promise((resolve) => setTimeout(resolve, 150)); // past the 50 ms timeout, before the 300 ms stop ends
    expect(status.current.get("t1")?.state).toBe("stopping");
    await task.idle();
    expect(status.current.has("t1")).toBe(false);
  });

  it("restarts a run() task that ends on its own, reporting it failed meanwhile", async () => {
    let runs = 0;
    const run = async (_task: Task, ctx: TaskContext) => {
      runs++;
      if (runs === 1) throw new Error("crashed");
      await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
    };
    const { task, status } = runner(run);
    task.set(spec(1));
    await waitFor("the second run", () => runs === 2 && task.state === "running");
    expect(status.history).toEqual(["starting", "running", "failed(crashed)", "starting", "running"]);
    task.set(undefined);
    await task.idle();
    expect(status.history.slice(-2)).toEqual(["running", "removed"]);
  });

  it("stops a run() task by aborting its signal and waiting for it to return", async () => {
    const events: string[] = [];
    const run = async (_task: Task, ctx: TaskContext) => {
      events.push("run");
      await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
      await new Promise((resolve) => setTimeout(resolve, 30));
      events.push("returned");
    };
    const { task } = runner(run);
    task.set(spec(1));
    await task.idle();
    task.set(undefined);
    await task.idle();
    expect(events).toEqual(["run", "returned"]);
    expect(task.state).toBe("stopped");
  });

  it("shows a value that is not a task as failed without calling the handler", async () => {
    const { handler, calls } = recordingHandler();
    const { task, status } = runner(handler);
    task.set({ problem: "not a task", fingerprint: "x" });
    await task.idle();
    expect(calls).toEqual([]);
    expect(status.current.get("t1")).toMatchObject({ state: "failed", error: "not a task" });
  });

  it("gives up a pending retry when the task is removed", async () => {
    const { handler, control, calls } = recordingHandler();
    control.failStarts = 100;
    const { task, status } = runner(handler, { retry: { initialMs: 10_000, maxMs: 10_000 } });
    task.set(spec(1));
    await waitFor("the first failure", () => task.state === "failed");
    task.set(undefined);
    await task.idle();
    expect(calls).toEqual(["start 1"]);
    expect(status.current.has("t1")).toBe(false);
  });

  it("abandons a start that rejects because it was aborted, without reporting it failed", async () => {
    const handler: StartStopHandler = {
      start: (_task, ctx) =>
        new Promise((_, reject) => ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason))),
      stop: () => {},
    };
    const { task, status } = runner(handler);
    task.set(spec(1));
    await waitFor("starting", () => task.state === "starting");
    task.set(undefined);
    await task.idle();
    expect(status.history).toEqual(["starting", "removed"]);
  });

  it("starts again a task removed and re-added during its slow start: the aborted start is stopped, a live one runs", async () => {
    const { handler, calls, control } = recordingHandler();
    let openGate!: () => void;
    control.startGate = new Promise((resolve) => (openGate = resolve));
    const { task, status } = runner(handler);
    task.set(spec(1, 1));
    await waitFor("start to be called", () => calls.length === 1);
    task.set(undefined);
    task.set(spec(1, 2));
    openGate();
    await task.idle();
    expect(calls).toEqual(["start 1", "stop 1", "stopped 1", "start 1"]);
    expect(control.contexts.map((ctx) => ctx.signal.aborted)).toEqual([true, false]);
    expect(task.state).toBe("running");
    expect(status.current.get("t1")?.state).toBe("running");
  });

  it("runs again a run() task deleted and put back while its status is being written", async () => {
    const contexts: TaskContext[] = [];
    const run = async (_task: Task, ctx: TaskContext) => {
      contexts.push(ctx);
      await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
    };
    const { task, status } = runner(run);
    task.set(spec(1, 1));
    await task.idle();
    let openGate!: () => void;
    status.gate = { state: "running", open: new Promise((resolve) => (openGate = resolve)) };
    task.set(spec(2, 2));
    await waitFor("the restart's run", () => contexts.length === 2);
    // Both arrive while the runner waits for its `running` write to reach etcd.
    task.set(undefined);
    task.set(spec(2, 3));
    status.gate = undefined;
    openGate();
    await task.idle();
    expect(contexts.map((ctx) => ctx.signal.aborted)).toEqual([true, true, false]);
    expect(task.state).toBe("running");
    expect(status.current.get("t1")?.state).toBe("running");
  });
});
