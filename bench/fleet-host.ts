/**
 * One process of the fleet benchmark: `FLEET_HOST_WORKERS` library `Worker`s (each with its own etcd
 * client, as an operator embedding escheduler would run them), started together when "go" arrives
 * on stdin. It prints one JSON line — registered, assigned and running task counts, and leases lost and
 * suspended (keep-alives overdue, then resumed or lost) so far — within `FLEET_CHANGE_REPORT_MS` (default
 * 10 ms) of a change, so that a phase ends when its last task runs rather than at the next periodic
 * report, and every `FLEET_REPORT_MS` (default 250 ms) besides.
 * SIGTERM stops them all.
 */
import { createInterface } from "node:readline";
import type { Worker as WorkerClass } from "../src/index.js";

// The built library (dist/, which `npm run bench`'s set-up builds), as users run it: through tsx every
// function the library makes per task would also be given its name by a call (tsx's keepNames).
const library = process.env.FLEET_LIBRARY ?? "../dist/index.js";
const { Worker } = (await import(new URL(library, import.meta.url).href)) as { Worker: typeof WorkerClass };

const endpoints = (process.env.FLEET_ETCD ?? "").split(",");
const root = process.env.FLEET_ROOT ?? "";
const names = (process.env.FLEET_HOST_WORKERS ?? "").split(",").filter(Boolean);
const ttlMs = Number(process.env.FLEET_TTL_MS ?? 10_000);
const maxWorkers = Number(process.env.FLEET_MAX_WORKERS ?? 0);
const reportMs = Number(process.env.FLEET_REPORT_MS ?? 250);
const changeReportMs = Number(process.env.FLEET_CHANGE_REPORT_MS ?? 10);
// The first start's gathering (`--workers`): 0 skips it.
const expectedWorkers = Number(process.env.FLEET_EXPECTED_WORKERS ?? 0);

const handler = { start: () => {}, stop: () => {} };
// Counted from the workers' events (O(change)): listing every task each report cost the process more
// than its workers did once reports came often.
const counts = { registered: 0, assigned: 0, running: 0, lost: 0, suspended: 0 };
let pending: NodeJS.Timeout | undefined;

function report(): void {
  clearTimeout(pending);
  pending = undefined;
  process.stdout.write(`${JSON.stringify(counts)}\n`);
}

/** Changes a count; one report follows within `changeReportMs`, however many changes come meanwhile. */
function add(count: keyof typeof counts, by = 1): void {
  counts[count] += by;
  pending ??= setTimeout(report, changeReportMs);
}

const workers = names.map((name) => {
  const worker = new Worker({ etcd: endpoints, root, name, ttlMs, maxWorkers, expectedWorkers, handler });
  const states = new Map<string, string>();
  let counted = false;
  worker.on("lost", () => add("lost"));
  worker.on("suspended", () => add("suspended"));
  // Counted once, whatever came before: a lease suspended while the worker waited to register makes
  // it "lost" first, and "registered" follows from "lost" once the lease resumes.
  worker.on("status", (status) => {
    if (counted || status === "new" || status === "lost" || status === "dead") return;
    counted = true;
    add("registered");
  });
  worker.on("added", () => add("assigned"));
  worker.on("removed", () => add("assigned", -1));
  worker.on("taskState", ({ task, state }) => {
    const was = states.get(task) === "running" ? 1 : 0;
    if (state === "stopped") states.delete(task);
    else states.set(task, state);
    add("running", (state === "running" ? 1 : 0) - was);
  });
  return worker;
});

const lines = createInterface({ input: process.stdin });
lines.once("line", () => {
  for (const worker of workers) {
    worker.start().catch((error: unknown) => console.error(`${worker.name}: ${String(error)}`));
  }
  setInterval(report, reportMs).unref();
});
process.once("SIGTERM", () => {
  void Promise.all(workers.map((worker) => worker.stop())).finally(() => process.exit(0));
});
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
