/** Prometheus metrics of one node, fed by the typed events of its Master or Worker (core code never imports prom-client). */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { Master } from "../master/index.js";
import type { Worker } from "../worker/index.js";

/** A registry with Node's process metrics (CPU, memory, event-loop lag, …). */
export function createRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

/** Leader state, schedules (outcome, duration, moves) and hand-off waits of a master. */
export function observeMaster(master: Master, registry: Registry): void {
  const registers = [registry];
  const leader = new Gauge({
    name: "escheduler_master_leader",
    help: "1 while this master is the leader, else 0",
    registers,
  });
  const elections = new Counter({
    name: "escheduler_master_elections_total",
    help: "Times this master was elected",
    registers,
  });
  const schedules = new Counter({
    name: "escheduler_schedules_total",
    help: "Schedules by outcome (applied, failed, or refused by the removal guard)",
    labelNames: ["outcome"] as const,
    registers,
  });
  const duration = new Histogram({
    name: "escheduler_schedule_duration_seconds",
    help: "Time of an applied schedule: generator, read, plan and fenced writes",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers,
  });
  const moved = new Counter({
    name: "escheduler_tasks_moved_total",
    help: "Tasks moved from one live worker to another by applied schedules",
    registers,
  });
  const lastTasks = new Gauge({
    name: "escheduler_schedule_tasks",
    help: "Tasks in the last applied schedule, by kind (total, unassigned)",
    labelNames: ["kind"] as const,
    registers,
  });
  const handoffWaits = new Histogram({
    name: "escheduler_handoff_wait_seconds",
    help: "How long a moved task waited for its old owner to stop it before being written to the new one",
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers,
  });
  const failures = new Counter({
    name: "escheduler_schedule_failures_total",
    help: "Failed or refused schedules by reason (ERR_GENERATOR, ERR_BAD_TASK, ERR_ETCD, removal_guard, …); the assignment stays as it was",
    labelNames: ["reason"] as const,
    registers,
  });
  const paused = new Gauge({
    name: "escheduler_schedules_paused",
    help: "1 while this master leads and schedules are paused (escheduler pause), else 0",
    registers,
  });
  const cordoned = new Gauge({
    name: "escheduler_workers_cordoned",
    help: "Registered workers the last applied schedule planned as cordoned or draining, by mode",
    labelNames: ["mode"] as const,
    registers,
  });
  leader.set(0);
  paused.set(0);
  for (const mode of ["cordon", "drain"]) cordoned.set({ mode }, 0);
  schedules.inc({ outcome: "applied" }, 0);
  schedules.inc({ outcome: "failed" }, 0);
  schedules.inc({ outcome: "refused" }, 0);
  failures.inc({ reason: "removal_guard" }, 0);

  master.on("elected", () => {
    leader.set(1);
    elections.inc();
  });
  master.on("deposed", () => {
    leader.set(0);
    paused.set(0);
  });
  master.on("paused", () => paused.set(1));
  master.on("resumed", () => paused.set(0));
  master.on("scheduled", (figures) => {
    schedules.inc({ outcome: "applied" });
    duration.observe(figures.durationMs / 1000);
    moved.inc(figures.moved);
    lastTasks.set({ kind: "total" }, figures.tasks);
    lastTasks.set({ kind: "unassigned" }, figures.unassigned);
    cordoned.set({ mode: "cordon" }, figures.cordoned);
    cordoned.set({ mode: "drain" }, figures.draining);
  });
  master.on("scheduleFailed", ({ reason }) => {
    schedules.inc({ outcome: reason === "removal_guard" ? "refused" : "failed" });
    failures.inc({ reason });
  });
  master.on("handoffWait", ({ ms }) => handoffWaits.observe(ms / 1000));
}

const TASK_STATES = ["starting", "running", "failed", "stopping"] as const;
const WORKER_STATUSES = ["new", "registered", "in_barrier", "left_barrier", "lost", "dead"] as const;

/** Tasks by state, lifecycle status, watch resyncs and lease losses of a worker (labelled with its name). */
export function observeWorker(worker: Worker, registry: Registry): void {
  const name = worker.name;
  const registers = [registry];
  new Gauge({
    name: "escheduler_worker_tasks",
    help: "Tasks on this worker by state",
    labelNames: ["worker", "state"] as const,
    registers,
    collect() {
      const counts = new Map<string, number>(TASK_STATES.map((state) => [state, 0]));
      for (const { state } of worker.tasks()) counts.set(state, (counts.get(state) ?? 0) + 1);
      for (const [state, count] of counts) this.set({ worker: name, state }, count);
    },
  });
  new Gauge({
    name: "escheduler_worker_status",
    help: "1 for the worker's current lifecycle status, 0 for the others",
    labelNames: ["worker", "status"] as const,
    registers,
    collect() {
      const current = worker.status;
      for (const status of WORKER_STATUSES) this.set({ worker: name, status }, status === current ? 1 : 0);
    },
  });
  const changes = new Counter({
    name: "escheduler_worker_task_changes_total",
    help: "Tasks assigned to (added) or taken from (removed) this worker",
    labelNames: ["worker", "change"] as const,
    registers,
  });
  const resyncs = new Counter({
    name: "escheduler_watch_resyncs_total",
    help: "Times the task watch had to re-read its snapshot (compaction or reconnect)",
    labelNames: ["worker"] as const,
    registers,
  });
  const leaseLosses = new Counter({
    name: "escheduler_lease_losses_total",
    help: "Times the worker lost its lease and stopped its tasks (self-fencing)",
    labelNames: ["worker"] as const,
    registers,
  });
  for (const change of ["added", "removed"]) changes.inc({ worker: name, change }, 0);
  resyncs.inc({ worker: name }, 0);
  leaseLosses.inc({ worker: name }, 0);

  worker.on("added", () => changes.inc({ worker: name, change: "added" }));
  worker.on("removed", () => changes.inc({ worker: name, change: "removed" }));
  worker.on("resync", () => resyncs.inc({ worker: name }));
  worker.on("leaseLost", () => leaseLosses.inc({ worker: name }));
}
