import type { Etcd3 } from "etcd3";
import { describe, expect, it } from "vitest";
import { keyLayout, silentLogger, type Task } from "../../../src/node/index.js";
import { taskLauncher } from "../../../src/worker/handler.js";
import { WorkerSession } from "../../../src/worker/worker-session.js";
import { waitFor } from "../../helpers/context.js";
import { fakeLease, recordingHost } from "./fake-lease.js";
import { MemoryStatus } from "./memory-status.js";

const keys = keyLayout("unit");

/** A start/stop handler whose stops wait until released when `holdStops` is set. */
function handler() {
  const running = new Set<string>();
  const releases: Array<() => void> = [];
  const control = { holdStops: false };
  return {
    running,
    control,
    releaseStops: () => releases.splice(0).forEach((release) => release()),
    handler: {
      start: (task: Task) => void running.add(task.id),
      stop: async (task: Task) => {
        if (control.holdStops) await new Promise<void>((resolve) => releases.push(resolve));
        running.delete(task.id);
      },
    },
  };
}

function session(options: { handler?: unknown; stopTimeoutMs?: number; suspended?: boolean } = {}) {
  const status = new MemoryStatus();
  const lease = fakeLease(options.suspended);
  const recorder = recordingHost();
  const workerSession = new WorkerSession({
    client: {} as Etcd3,
    keys,
    name: "w1",
    lease: lease.lease,
    launcher: options.handler === undefined ? undefined : taskLauncher(options.handler),
    logger: silentLogger,
    stopTimeoutMs: options.stopTimeoutMs ?? 1_000,
    startRetry: { initialMs: 20, maxMs: 40 },
    expectedWorkers: 0,
    host: recorder.host,
    status,
  });
  return { session: workerSession, status, ...lease, ...recorder };
}

const value = (id: string, payload?: unknown) => JSON.stringify({ id, payload });
const snapshot = (...ids: string[]) => new Map(ids.map((id) => [keys.task("w1", id), value(id)]));
const put = (id: string, payload?: unknown) =>
  ({
    type: "put",
    key: keys.task("w1", id),
    value: value(id, payload),
    revision: 9,
    synthetic: false,
  }) as const;
const del = (id: string) =>
  ({ type: "delete", key: keys.task("w1", id), revision: 9, synthetic: false }) as const;
const running = (status: MemoryStatus, ids: string[]) =>
  ids.every((id) => status.current.get(id)?.state === "running") && status.current.size === ids.length;

describe("WorkerSession (one registration's assignment table and fencing, with a fake sink)", () => {
  it("runs every task of a snapshot, and stops the ones a later snapshot no longer holds", async () => {
    const h = handler();
    const { session: s, status, changes } = session({ handler: h.handler });
    s.applySnapshot(snapshot("a", "b"), () => 5);
    await waitFor("a and b running", () => running(status, ["a", "b"]));

    s.applySnapshot(snapshot("a"), () => 6);
    await waitFor("only a running", () => running(status, ["a"]));
    expect([...h.running]).toEqual(["a"]);
    expect(changes.map((change) => change.type)).toEqual(["added", "added", "removed"]);
    expect(s.tasks().map((task) => `${task.id}:${task.state}`)).toEqual(["a:running"]);
  });

  it("restarts a task whose value changed, and stops one whose key was deleted", async () => {
    const h = handler();
    const { session: s, status } = session({ handler: h.handler });
    s.applySnapshot(snapshot("a"), () => 5);
    await waitFor("a running", () => running(status, ["a"]));

    s.applyChange(put("a", 2), 7);
    await waitFor("a restarted", () => status.history.filter((state) => state === "running").length === 2);
    s.applyChange(del("a"), 8);
    await waitFor("a stopped", () => status.current.size === 0);
    // Stops that return at once: stopping only before the restart, not before the removal.
    expect(status.history).toEqual(["starting", "running", "stopping", "starting", "running", "removed"]);
  });

  it("fences on a lease loss: every task stops at once, later changes are ignored, leaseLost once stopped", async () => {
    const h = handler();
    const { session: s, status, lose, events, statuses } = session({ handler: h.handler });
    s.applySnapshot(snapshot("a", "b"), () => 5);
    await waitFor("a and b running", () => running(status, ["a", "b"]));

    lose(new Error("keep-alive unconfirmed"));
    await waitFor("leaseLost", () => events.includes("leaseLost"));
    s.applyChange(put("c"), 9);

    expect(h.running.size).toBe(0);
    expect(events).toEqual(["removed a (fenced)", "removed b (fenced)", "lost", "leaseLost"]);
    expect(statuses).toEqual(["lost"]);
    expect(s.tasks()).toEqual([]);
  });

  it("suspended: every task stops, the registration stays; resumed: the latest view starts again through claims", async () => {
    const h = handler();
    const { session: s, status, suspend, resume, events, statuses } = session({ handler: h.handler });
    s.applySnapshot(snapshot("a", "b"), () => 5);
    await waitFor("a and b running", () => running(status, ["a", "b"]));
    statuses.push("left_barrier");

    suspend(new Error("keep-alive overdue"));
    await waitFor("every task stopped", () => status.current.size === 0);
    expect(h.running.size).toBe(0);
    // Changes while suspended are remembered, not acted on.
    s.applyChange(del("b"), 8);
    s.applyChange(put("c"), 9);
    expect(s.tasks()).toEqual([]);

    resume();
    await waitFor("a and c running again", () => running(status, ["a", "c"]));
    expect([...h.running].sort()).toEqual(["a", "c"]);
    expect(status.claims.map((claim) => `${claim.taskId}@${claim.revision}`)).toEqual([
      "a@5",
      "b@5",
      "a@5",
      "c@9",
    ]);
    expect(events.filter((event) => !event.startsWith("removed"))).toEqual(["suspended", "resumed"]);
    expect(statuses.slice(-2)).toEqual(["lost", "left_barrier"]);
  });

  it("on a lease suspended before the session was made: says lost and starts nothing until the lease resumes", async () => {
    const h = handler();
    const { session: s, status, resume, events, statuses } = session({ handler: h.handler, suspended: true });
    expect(statuses).toEqual(["lost"]);
    s.applySnapshot(snapshot("a"), () => 5);
    await s.idle();
    expect(h.running.size).toBe(0);
    expect(status.claims).toEqual([]);

    resume();
    await waitFor("a running", () => running(status, ["a"]));
    expect(status.claims.map((claim) => `${claim.taskId}@${claim.revision}`)).toEqual(["a@5"]);
    expect(events).toEqual(["suspended", "resumed"]);
  });

  it("close() keeps the lease while a stop overruns the stop timeout, reports the overrun, then revokes", async () => {
    const h = handler();
    const { session: s, status, events, revoked } = session({ handler: h.handler, stopTimeoutMs: 50 });
    s.applySnapshot(snapshot("a"), () => 5);
    await waitFor("a running", () => running(status, ["a"]));
    h.control.holdStops = true;

    let closed = false;
    const closing = s.close().then(() => (closed = true));
    await waitFor("the overrun", () => events.includes("stopOverrun"));
    expect(closed).toBe(false);
    expect(revoked).toEqual([]);
    expect(status.current.get("a")?.state).toBe("stopping");

    h.releaseStops();
    await closing;
    expect(revoked).toEqual(["close"]);
    expect(status.current.size).toBe(0);
  });

  it("without a handler, takes reports for assigned tasks only (the first one as a claim)", async () => {
    const { session: s, status } = session();
    s.applySnapshot(snapshot("a"), () => 5);
    status.staleRevisions.add(6);
    s.applyChange(put("b"), 6);

    await s.report("a", "running");
    await expect(s.report("b", "starting")).rejects.toMatchObject({ code: "ERR_NOT_ASSIGNED" });
    await expect(s.report("zzz", "running")).rejects.toMatchObject({ code: "ERR_NOT_ASSIGNED" });
    await s.report("zzz", "stopped");
    expect(status.history).toEqual(["running", "claim refused"]);
    expect(s.tasks().map((task) => `${task.id}:${task.state}`)).toEqual(["a:running", "b:stopped"]);
  });
});
