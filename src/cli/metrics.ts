/** Prometheus metrics of one node, fed by the typed events of its Master or Worker (core code never imports prom-client). */
import { REASON_KINDS } from "../balancer/index.js";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { Master } from "../master/index.js";
import type { Worker } from "../worker/index.js";
import { packageVersion } from "./version.js";

/** A registry with Node's process metrics (CPU, memory, event-loop lag, …) and `escheduler_build_info`. */
export function createRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  new Gauge({
    name: "escheduler_build_info",
    help: "Always 1; the labels name the escheduler version and the Node.js version running it",
    labelNames: ["version", "node_version"] as const,
    registers: [registry],
  }).set({ version: packageVersion(), node_version: process.versions.node }, 1);
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
  const readSources = new Counter({
    name: "escheduler_schedule_reads_total",
    help: "Applied schedules by where they read workers, tasks and controls: the leader's watch-fed view, or etcd when the view was late",
    labelNames: ["source"] as const,
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
  const registered = new Gauge({
    name: "escheduler_workers_registered",
    help: "Registered workers the last applied schedule read (cordoned and draining ones included)",
    registers,
  });
  const unassigned = new Gauge({
    name: "escheduler_tasks_unassigned",
    help: "Generated tasks the last applied schedule could place on no worker, by reason kind (capacity, selector, spread, antiKey, key)",
    labelNames: ["reason"] as const,
    registers,
  });
  const held = new Gauge({
    name: "escheduler_tasks_held",
    help: "Tasks the last applied schedule kept for crashed workers to come back (--reassign-delay)",
    registers,
  });
  const holdEnds = new Gauge({
    name: "escheduler_hold_end_timestamp_seconds",
    help: "When the first hold the last applied schedule kept ends (Unix time; 0 when nothing is held): the leader moves its tasks then",
    registers,
  });
  leader.set(0);
  held.set(0);
  holdEnds.set(0);
  paused.set(0);
  registered.set(0);
  for (const reason of REASON_KINDS) unassigned.set({ reason }, 0);
  for (const mode of ["cordon", "drain"]) cordoned.set({ mode }, 0);
  schedules.inc({ outcome: "applied" }, 0);
  schedules.inc({ outcome: "failed" }, 0);
  schedules.inc({ outcome: "refused" }, 0);
  for (const source of ["view", "etcd"]) readSources.inc({ source }, 0);
  failures.inc({ reason: "removal_guard" }, 0);

  master.on("elected", () => {
    leader.set(1);
    elections.inc();
  });
  // What the last schedule saw is the leader's to report: a deposed master's old figures would add up
  // with the new leader's (and keep an unassigned-tasks alert firing).
  master.on("deposed", () => {
    leader.set(0);
    paused.set(0);
    registered.set(0);
    held.set(0);
    holdEnds.set(0);
    unassigned.reset();
    for (const reason of REASON_KINDS) unassigned.set({ reason }, 0);
    for (const mode of ["cordon", "drain"]) cordoned.set({ mode }, 0);
    lastTasks.reset();
  });
  master.on("paused", () => paused.set(1));
  master.on("resumed", () => paused.set(0));
  master.on("scheduled", (figures) => {
    schedules.inc({ outcome: "applied" });
    readSources.inc({ source: figures.readSource });
    duration.observe(figures.durationMs / 1000);
    moved.inc(figures.moved);
    lastTasks.set({ kind: "total" }, figures.tasks);
    lastTasks.set({ kind: "unassigned" }, figures.unassigned);
    cordoned.set({ mode: "cordon" }, figures.cordoned);
    cordoned.set({ mode: "drain" }, figures.draining);
    registered.set(figures.workers);
    held.set(figures.held);
    holdEnds.set(figures.holdEndsAt === undefined ? 0 : figures.holdEndsAt / 1000);
    for (const reason of REASON_KINDS) unassigned.set({ reason }, figures.unassignedReasons[reason] ?? 0);
  });
  master.on("scheduleFailed", ({ reason }) => {
    schedules.inc({ outcome: reason === "removal_guard" ? "refused" : "failed" });
    failures.inc({ reason });
  });
  master.on("handoffWait", ({ ms }) => handoffWaits.observe(ms / 1000));
}

const TASK_STATES = ["starting", "running", "failed", "stopping"] as const;
const WORKER_STATUSES = ["new", "registered", "in_barrier", "left_barrier", "lost", "dead"] as const;

/** Tasks by state, lifecycle status, start latency, watch resyncs, lease health of a worker (labelled with its name). */
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
    help: "Times the worker's lease was lost (etcd said it is gone, or a whole TTL passed unconfirmed); it registers anew",
    labelNames: ["worker"] as const,
    registers,
  });
  const suspensions = new Counter({
    name: "escheduler_lease_suspensions_total",
    help: "Times the worker stopped every task because no keep-alive was confirmed within TTL minus the margin (self-fencing)",
    labelNames: ["worker"] as const,
    registers,
  });
  const keepalives = new Histogram({
    name: "escheduler_keepalive_round_trip_seconds",
    help: "From sending a lease keep-alive to etcd confirming it",
    labelNames: ["worker"] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers,
  });
  const starts = new Histogram({
    name: "escheduler_task_start_seconds",
    help: "From a task's assignment reaching this worker to its handler reporting it running (start claim included)",
    labelNames: ["worker"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers,
  });
  for (const change of ["added", "removed"]) changes.inc({ worker: name, change }, 0);
  resyncs.inc({ worker: name }, 0);
  leaseLosses.inc({ worker: name }, 0);
  suspensions.inc({ worker: name }, 0);
  keepalives.zero({ worker: name });
  starts.zero({ worker: name });
  // When each task's assignment arrived, until its first `running`.
  const assignedAt = new Map<string, number>();

  worker.on("added", (task) => {
    changes.inc({ worker: name, change: "added" });
    assignedAt.set(task.id, performance.now());
  });
  worker.on("removed", (id) => {
    changes.inc({ worker: name, change: "removed" });
    assignedAt.delete(id);
  });
  worker.on("taskState", ({ task, state }) => {
    const since = assignedAt.get(task);
    if (state !== "running" || since === undefined) return;
    starts.observe({ worker: name }, (performance.now() - since) / 1000);
    assignedAt.delete(task);
  });
  worker.on("resync", () => resyncs.inc({ worker: name }));
  worker.on("leaseLost", () => leaseLosses.inc({ worker: name }));
  worker.on("suspended", () => suspensions.inc({ worker: name }));
  worker.on("keepalive", ({ roundTripMs }) => keepalives.observe({ worker: name }, roundTripMs / 1000));
}
