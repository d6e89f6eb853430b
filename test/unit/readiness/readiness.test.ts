import { describe, expect, it } from "vitest";
import { type ClusterView, clusterReadiness, workerReadiness } from "../../../src/readiness/index.js";
import type { TaskStatus, WorkerInfo } from "../../../src/node/index.js";

const running: TaskStatus = { state: "running", attempt: 1, since: "2026-01-01T00:00:00.000Z" };

function worker(name: string): WorkerInfo {
  return { name, host: "h", pid: 1, version: "0.1.0", startedAt: "2026-01-01T00:00:00.000Z" };
}

/** A healthy cluster: leader m1, marker set, plan covering w1 and w2, every task running. */
function healthyView(): ClusterView {
  return {
    revision: 42,
    leader: "m1",
    barrierLeft: "2026-01-01T00:00:00.000Z",
    plan: {
      epoch: 3,
      leader: "m1",
      at: "2026-01-01T00:00:00.000Z",
      workers: ["w1", "w2"],
      tasks: 3,
      moved: 0,
    },
    workers: new Map([
      ["w1", worker("w1")],
      ["w2", worker("w2")],
    ]),
    assignments: new Map([
      ["w1", ["t1", "t2"]],
      ["w2", ["t3"]],
    ]),
    statuses: new Map([
      [
        "w1",
        new Map([
          ["t1", running],
          ["t2", running],
        ]),
      ],
      ["w2", new Map([["t3", running]])],
    ]),
  };
}

describe("workerReadiness", () => {
  it("is ready when registered, past the barrier, planned and running every task", () => {
    expect(workerReadiness("w1", healthyView())).toEqual({ ready: true, reasons: [] });
  });

  it.each<[string, (view: ClusterView) => void, string]>([
    ["not registered", (view) => view.workers.delete("w1"), 'worker "w1" is not registered'],
    ["marker missing", (view) => delete view.barrierLeft, "worker_barrier_left is not set"],
    ["no plan yet", (view) => delete view.plan, "no plan has been applied yet"],
    [
      "not in the last plan",
      (view) => {
        view.plan!.workers = ["w2"];
      },
      'worker "w1" is not in the last plan (epoch 3)',
    ],
    [
      "a task not running",
      (view) => view.statuses.get("w1")!.set("t2", { ...running, state: "starting" }),
      'task "t2" on "w1" is starting',
    ],
    [
      "a task failed",
      (view) => view.statuses.get("w1")!.set("t1", { ...running, state: "failed", error: "boom" }),
      'task "t1" on "w1" is failed: boom',
    ],
    [
      "a task without status",
      (view) => view.statuses.get("w1")!.delete("t2"),
      'task "t2" on "w1" has no status yet',
    ],
  ])("is not ready when %s", (_, breakIt, reason) => {
    const view = healthyView();
    breakIt(view);
    const readiness = workerReadiness("w1", view);
    expect(readiness.ready).toBe(false);
    expect(readiness.reasons).toHaveLength(1);
    expect(readiness.reasons[0]).toContain(reason);
  });

  it("ignores other workers' problems and the absence of a leader", () => {
    const view = healthyView();
    delete view.leader;
    view.statuses.get("w2")!.set("t3", { ...running, state: "failed", error: "elsewhere" });
    expect(workerReadiness("w1", view).ready).toBe(true);
  });
});

describe("clusterReadiness", () => {
  it("is ready when a leader exists, the marker is set, the plan covers everyone and every task runs", () => {
    expect(clusterReadiness(healthyView())).toEqual({ ready: true, reasons: [] });
  });

  it.each<[string, (view: ClusterView) => void, string]>([
    ["no leader", (view) => delete view.leader, "no master is leading"],
    ["marker missing", (view) => delete view.barrierLeft, "worker_barrier_left is not set"],
    ["no plan yet", (view) => delete view.plan, "no plan has been applied yet"],
    [
      "a registered worker is not in the last plan",
      (view) => view.workers.set("w3", worker("w3")),
      'worker "w3" is not in the last plan (epoch 3)',
    ],
    [
      "a task is not running",
      (view) => view.statuses.get("w2")!.set("t3", { ...running, state: "stopping" }),
      'task "t3" on "w2" is stopping',
    ],
    [
      "a task failed",
      (view) => view.statuses.get("w2")!.set("t3", { ...running, state: "failed", error: "boom" }),
      'task "t3" on "w2" is failed: boom',
    ],
    [
      "generated tasks are not assigned (no worker or no capacity)",
      (view) => {
        view.plan!.tasks += 12;
      },
      "12 of 15 generated tasks are not assigned to any worker",
    ],
    [
      "a task is assigned to a worker that is gone",
      (view) => {
        view.assignments.set("w9", ["t9"]);
      },
      'task "t9" on "w9" has no status yet',
    ],
  ])("is not ready when %s", (_, breakIt, reason) => {
    const view = healthyView();
    breakIt(view);
    const readiness = clusterReadiness(view);
    expect(readiness.ready).toBe(false);
    expect(readiness.reasons).toHaveLength(1);
    expect(readiness.reasons[0]).toContain(reason);
  });

  it("tolerates planned workers that are no longer registered (their tasks speak for them)", () => {
    const view = healthyView();
    view.plan!.workers.push("w-gone");
    expect(clusterReadiness(view).ready).toBe(true);
  });

  it("lists at most ten reasons and counts the rest", () => {
    const view = healthyView();
    view.assignments.set(
      "w2",
      Array.from({ length: 25 }, (_, i) => `t${String(i).padStart(2, "0")}`),
    );
    const { ready, reasons } = clusterReadiness(view);
    expect(ready).toBe(false);
    expect(reasons).toHaveLength(11);
    expect(reasons[0]).toBe('task "t00" on "w2" has no status yet');
    expect(reasons[10]).toBe("and 15 more");
  });
});
