import { describe, expect, it } from "vitest";
import { ReportedTask } from "../../../src/worker/reported-task.js";
import type { TaskSpec, TaskStateChange } from "../../../src/worker/task-runner.js";
import { MemoryStatus } from "./memory-status.js";

function spec(revision: number): TaskSpec {
  const task = { id: "t1" };
  return { task, fingerprint: JSON.stringify(task), revision };
}

function reported() {
  const status = new MemoryStatus();
  const states: TaskStateChange[] = [];
  let settled = 0;
  const task = new ReportedTask({
    taskId: "t1",
    worker: "w1",
    status,
    onState: (change) => states.push(change),
    onSettled: () => settled++,
  });
  return { task, status, states, settled: () => settled };
}

describe("ReportedTask (a task the worker's user runs and reports)", () => {
  it("claims the assignment with its first state, then writes later states without a claim", async () => {
    const { task, status } = reported();
    task.set(spec(7));
    await task.report("starting");
    await task.report("running");
    expect(status.history).toEqual(["starting", "running"]);
    expect(status.current.get("t1")).toMatchObject({ state: "running", attempt: 1 });
    expect(task.storedState).toBe("running");
  });

  it("refuses the start with ERR_NOT_ASSIGNED when the task key changed before the claim, and every later state too", async () => {
    const { task, status } = reported();
    status.staleRevisions.add(7);
    task.set(spec(7));
    await expect(task.report("starting")).rejects.toMatchObject({ code: "ERR_NOT_ASSIGNED" });
    await expect(task.report("running")).rejects.toMatchObject({ code: "ERR_NOT_ASSIGNED" });
    expect(status.current.size).toBe(0);
    expect(task.state).toBe("stopped");
  });

  it("shows failed naming the new holder when another worker takes its run lock, and claims again at the next report", async () => {
    const { task, status } = reported();
    task.set(spec(7));
    await task.report("running");
    status.setForeignLock("t1", "w2");

    task.lockLost({ claimed: false, heldBy: "w2", released: async () => {} });
    await task.idle();

    expect(task.state).toBe("failed");
    expect(status.current.get("t1")?.error).toContain('run lock held by worker "w2"');
    await expect(task.report("running")).rejects.toMatchObject({ code: "ERR_RUN_LOCKED" });
    expect(status.claims).toHaveLength(2);
  });

  it("refuses the start with ERR_RUN_LOCKED naming the holder while another worker holds the run lock", async () => {
    const { task, status } = reported();
    status.setForeignLock("t1", "w2");
    task.set(spec(7));
    await expect(task.report("starting")).rejects.toMatchObject({
      code: "ERR_RUN_LOCKED",
      message: expect.stringContaining('run lock held by worker "w2"'),
    });
    expect(status.current.size).toBe(0);

    status.setForeignLock("t1", undefined);
    await task.report("starting");
    expect(status.current.get("t1")).toMatchObject({ state: "starting" });
  });

  it("refuses any state but stopped once the task is no longer assigned", async () => {
    const { task, status } = reported();
    task.set(spec(7));
    await task.report("running");
    task.set(undefined);
    await expect(task.report("running")).rejects.toMatchObject({ code: "ERR_NOT_ASSIGNED" });
    await task.report("stopped");
    expect(status.history).toEqual(["running", "removed"]);
  });

  it("applies the reports of one task in the order they were made, even when not awaited", async () => {
    const { task, status, states, settled } = reported();
    task.set(spec(7));
    const reports = [
      task.report("starting"),
      task.report("running"),
      task.report("failed", "crashed"),
      task.report("stopped"),
    ];
    await Promise.all(reports);
    task.set(undefined);
    expect(status.history).toEqual(["starting", "running", "failed(crashed)", "removed"]);
    expect(states.map((change) => change.state)).toEqual(["starting", "running", "failed", "stopped"]);
    expect(settled()).toBe(1);
  });

  it("claims a new assignment of the same task again (after it was moved away and back)", async () => {
    const { task, status } = reported();
    task.set(spec(7));
    await task.report("running");
    task.set(spec(9));
    status.staleRevisions.add(9);
    await expect(task.report("running")).rejects.toMatchObject({ code: "ERR_NOT_ASSIGNED" });
  });
});
