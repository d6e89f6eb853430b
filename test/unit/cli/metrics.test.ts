import { EventEmitter } from "node:events";
import { describe, expect, it } from "vitest";
import { createRegistry, observeMaster, observeWorker } from "../../../src/cli/metrics.js";
import { packageVersion } from "../../../src/cli/version.js";
import type { Master } from "../../../src/master/index.js";
import type { Worker } from "../../../src/worker/index.js";

/** A stand-in that emits the typed events the metrics listen to. */
function fakeWorker(): EventEmitter & Pick<Worker, "name" | "status" | "tasks"> {
  return Object.assign(new EventEmitter(), {
    name: "w1",
    status: "left_barrier" as const,
    tasks: () => [],
  });
}

describe("metrics", () => {
  it("every registry names the version it runs", async () => {
    const text = await createRegistry().metrics();
    expect(text).toContain(
      `escheduler_build_info{version="${packageVersion()}",node_version="${process.versions.node}"} 1`,
    );
  });

  it("counts suspensions apart from lease losses, and times keep-alives and starts", async () => {
    const worker = fakeWorker();
    const registry = createRegistry();
    observeWorker(worker as unknown as Worker, registry);
    worker.emit("suspended", new Error("keep-alive overdue"));
    worker.emit("suspended", new Error("keep-alive overdue"));
    worker.emit("leaseLost", { reason: new Error("gone"), tasks: 0, stoppedInMs: 1 });
    worker.emit("keepalive", { roundTripMs: 3 });
    worker.emit("added", { id: "t1" });
    worker.emit("taskState", { task: "t1", state: "starting", attempt: 1 });
    worker.emit("taskState", { task: "t1", state: "running", attempt: 1 });
    // A second `running` (e.g. after a resume) is no new start.
    worker.emit("taskState", { task: "t1", state: "running", attempt: 1 });
    const text = await registry.metrics();
    expect(text).toContain('escheduler_lease_suspensions_total{worker="w1"} 2');
    expect(text).toContain('escheduler_lease_losses_total{worker="w1"} 1');
    expect(text).toContain('escheduler_keepalive_round_trip_seconds_count{worker="w1"} 1');
    expect(text).toContain('escheduler_keepalive_round_trip_seconds_bucket{le="0.005",worker="w1"} 1');
    expect(text).toContain('escheduler_task_start_seconds_count{worker="w1"} 1');
  });

  it("shows registered workers, unassigned and held tasks and when the first hold ends, of the last applied schedule while leading", async () => {
    const master = new EventEmitter();
    const registry = createRegistry();
    observeMaster(master as unknown as Master, registry);
    expect(await registry.metrics()).toContain('escheduler_tasks_unassigned{reason="capacity"} 0');
    master.emit("scheduled", {
      workers: 4,
      tasks: 10,
      unassigned: 5,
      unassignedReasons: { capacity: 3, selector: 2 },
      moved: 0,
      cordoned: 1,
      draining: 0,
      held: 7,
      holdEndsAt: 1_800_000_000_500,
      durationMs: 12,
      readSource: "etcd",
    });
    const text = await registry.metrics();
    expect(text).toContain('escheduler_schedule_reads_total{source="etcd"} 1');
    expect(text).toContain('escheduler_schedule_reads_total{source="view"} 0');
    expect(text).toMatch(/^escheduler_workers_registered 4$/m);
    expect(text).toContain('escheduler_tasks_unassigned{reason="capacity"} 3');
    expect(text).toContain('escheduler_tasks_unassigned{reason="selector"} 2');
    expect(text).toContain('escheduler_tasks_unassigned{reason="antiKey"} 0');
    expect(text).toContain('escheduler_workers_cordoned{mode="cordon"} 1');
    expect(text).toMatch(/^escheduler_tasks_held 7$/m);
    expect(text).toMatch(/^escheduler_hold_end_timestamp_seconds 1800000000.5$/m);

    // Deposed, it reports nothing of the last schedule: only the new leader's figures count.
    master.emit("deposed", { epoch: 1, reason: "lease lost" });
    const after = await registry.metrics();
    expect(after).toMatch(/^escheduler_workers_registered 0$/m);
    expect(after).toContain('escheduler_tasks_unassigned{reason="capacity"} 0');
    expect(after).toContain('escheduler_tasks_unassigned{reason="selector"} 0');
    expect(after).toContain('escheduler_workers_cordoned{mode="cordon"} 0');
    expect(after).toMatch(/^escheduler_tasks_held 0$/m);
    expect(after).toMatch(/^escheduler_hold_end_timestamp_seconds 0$/m);
    expect(after).not.toMatch(/^escheduler_schedule_tasks\{/m);
  });
});
