import { describe, expect, it } from "vitest";
import type { Task } from "../../../src/node/index.js";
import type { StartStopHandler } from "../../../src/worker/handler.js";
import { doubleRuns, runIntervals, type TaskEvent } from "../../invariants/index.js";
import { testSpace, waitFor } from "../../helpers/context.js";
import { capturingLogger, putTask, testWorker } from "./fixtures.js";

/**
 * Two live processes of one worker name: the registration `/R/worker/w1` of process A, which runs
 * t0..t3 and holds their run locks, is deleted by hand, and a second process B of the name starts.
 * Invariant: a task never runs in two processes at once, whatever is written to or deleted from
 * `/R/worker/*` — from the handlers' own records (a run lasts from its start until its stop returns).
 * The lease TTL is 4 s, so a worker's lock audit runs every 2 s: A must notice the deletion through
 * its watch, well before its audit could.
 */
const TTL_MS = 4_000;
const TASKS = ["t0", "t1", "t2", "t3"];
/** A watch event and a round trip, with slack for a loaded machine; the audit interval is TTL/2 = 2 s. */
const NOTICE_BOUND_MS = 1_000;

/** Start and stop records of processes sharing a name, as the shared invariant checker reads them. */
class ProcessRecord {
  readonly events: TaskEvent[] = [];

  /** A handler for process `pid` whose stops take `stopMs` (recorded when they return). */
  handler(pid: number, stopMs: number): StartStopHandler {
    const record = (task: Task, event: "start" | "stop") =>
      this.events.push({
        t: performance.timeOrigin + performance.now(),
        worker: "w1",
        pid,
        task: task.id,
        event,
      });
    return {
      start: (task) => record(task, "start"),
      stop: async (task) => {
        await new Promise((resolve) => setTimeout(resolve, stopMs));
        record(task, "stop");
      },
    };
  }

  runsOn(pid: number): string[] {
    const open = new Set<string>();
    for (const event of this.events.filter((e) => e.pid === pid))
      if (event.event === "start") open.add(event.task);
      else open.delete(event.task);
    return [...open].sort();
  }

  doubleRuns(): string[] {
    return doubleRuns(runIntervals(this.events, []).intervals);
  }
}

async function processA(label: string, stopMs: number) {
  const space = testSpace(label);
  const { client, keys, root } = space;
  const record = new ProcessRecord();
  const logs = { a: capturingLogger(), b: capturingLogger() };
  const a = testWorker({ root, ttlMs: TTL_MS, handler: record.handler(1, stopMs), logger: logs.a.logger });
  await a.start();
  for (const id of TASKS) await putTask(client, keys, "w1", { id });
  await waitFor("t0..t3 to run on A", () => record.runsOn(1).length === TASKS.length);
  const registration = async () => (await client.get(keys.worker("w1")).exec()).kvs[0];
  return { ...space, record, logs, a, registration };
}

describe("a worker's registration deleted by hand while it runs tasks", () => {
  it("and a second process of the name started at once: no task runs in both; A stops every task, B runs them", async () => {
    // A's stops take 400 ms, so B registers while A is still stopping: B must wait for A's locks.
    const { client, keys, root, record, a, registration, logs } = await processA("same-name", 400);
    const leaseA = (await registration())?.lease;

    const deletedAt = Date.now();
    await client.delete().key(keys.worker("w1"));
    const b = testWorker({ root, ttlMs: TTL_MS, handler: record.handler(2, 0), logger: logs.b.logger });
    await b.start();
    await waitFor("t0..t3 to run on B", () => record.runsOn(2).length === TASKS.length, 10_000);
    // Two audit intervals more: neither process's audit may start anything again.
    await new Promise((resolve) => setTimeout(resolve, TTL_MS));

    const warnings = [...logs.a.lines, ...logs.b.lines].join("\n");
    expect(record.doubleRuns(), warnings).toEqual([]);
    expect(record.runsOn(1), warnings).toEqual([]);
    // (A loaded machine may suspend B's lease meanwhile: its tasks then stop and start again.)
    await waitFor("t0..t3 to run on B", () => record.runsOn(2).length === TASKS.length);
    const firstStop = record.events.find((e) => e.pid === 1 && e.event === "stop");
    expect((firstStop?.t ?? Infinity) - 400 - deletedAt).toBeLessThan(NOTICE_BOUND_MS);
    const holder = await registration();
    expect(holder?.lease).not.toBe(leaseA);
    expect(a.status).toBe("lost");
    for (const id of TASKS) expect(await client.get(keys.runLock(id)).string()).toBe("w1");
  }, 30_000);

  it("with no second process: it stops every task, registers again under a new lease and runs them again", async () => {
    const { client, keys, record, registration, logs } = await processA("same-name-alone", 0);
    const leaseA = (await registration())?.lease;

    const deletedAt = Date.now();
    await client.delete().key(keys.worker("w1"));
    const back = await waitFor("w1 to be registered again", async () => {
      const kv = await registration();
      return kv && kv.lease !== leaseA ? kv : undefined;
    });
    await waitFor("t0..t3 to run on A again", () => {
      const stops = record.events.filter((e) => e.event === "stop").length;
      return stops === TASKS.length && record.runsOn(1).length === TASKS.length;
    });

    expect(Date.now() - deletedAt).toBeLessThan(NOTICE_BOUND_MS + 2_000);
    expect(back.lease).not.toBe(leaseA);
    expect(record.doubleRuns()).toEqual([]);
    expect(logs.a.matching("registration lost: stopped every task")).toHaveLength(1);
  }, 30_000);

  it("overwritten by hand under another lease: the same", async () => {
    const { client, keys, record, registration } = await processA("same-name-overwritten", 0);
    const leaseA = (await registration())?.lease;
    const other = client.lease(60, { autoKeepAlive: false });
    const otherLease = await other.grant();

    await client
      .put(keys.worker("w1"))
      .value(JSON.stringify({ name: "w1" }))
      .lease(otherLease);
    await waitFor("t0..t3 to stop on A", () => record.runsOn(1).length === 0, NOTICE_BOUND_MS + 1_000);
    await other.revoke();
    await waitFor("w1 to be registered again", async () => {
      const kv = await registration();
      return kv && kv.lease !== leaseA && kv.lease !== otherLease;
    });
    await waitFor("t0..t3 to run on A again", () => record.runsOn(1).length === TASKS.length);

    expect(record.doubleRuns()).toEqual([]);
  }, 30_000);
});
