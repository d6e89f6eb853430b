/** Shared set-up for the worker's integration tests: a recording handler, started workers, a status recorder. */
import { Writable } from "node:stream";
import type { Etcd3 } from "etcd3";
import { pino } from "pino";
import { afterEach } from "vitest";
import type { KeyLayout, PlanRecord, Task, TaskStatus } from "../../../src/node/index.js";
import { PrefixWatcher } from "../../../src/watcher/index.js";
import type { StartStopHandler, TaskContext } from "../../../src/worker/handler.js";
import { Worker, type WorkerOptions } from "../../../src/worker/index.js";
import { testClient, testSpace } from "../../helpers/context.js";

/** A start/stop handler that records every call and what runs; payload `{ failStarts: n }` fails the first n starts. */
export class RecordingHandler implements StartStopHandler {
  readonly calls: string[] = [];
  readonly running = new Set<string>();
  readonly stoppedAt = new Map<string, number>();
  private readonly failures = new Map<string, number>();
  /** While set, starts of these ids wait until released. */
  readonly held = new Map<string, () => void>();
  private readonly gates = new Map<string, Promise<void>>();
  onStop?: (task: Task) => void;
  onStart?: (task: Task, ctx: TaskContext) => void;

  start = async (task: Task, ctx: TaskContext): Promise<void> => {
    this.calls.push(`start ${task.id} ${JSON.stringify(task.payload ?? null)}`);
    this.onStart?.(task, ctx);
    await this.gates.get(task.id);
    const failStarts = (task.payload as { failStarts?: number } | undefined)?.failStarts ?? 0;
    const failed = this.failures.get(task.id) ?? 0;
    if (failed < failStarts) {
      this.failures.set(task.id, failed + 1);
      throw new Error(`start ${failed + 1} of ${task.id} refused`);
    }
    this.running.add(task.id);
  };

  stop = async (task: Task): Promise<void> => {
    this.calls.push(`stop ${task.id} ${JSON.stringify(task.payload ?? null)}`);
    this.running.delete(task.id);
    this.stoppedAt.set(task.id, Date.now());
    this.onStop?.(task);
  };

  /** Makes the next starts of `id` wait until `release(id)`. */
  hold(id: string): void {
    this.gates.set(id, new Promise((resolve) => this.held.set(id, resolve)));
  }
  release(id: string): void {
    this.held.get(id)?.();
    this.gates.delete(id);
  }

  callsFor(id: string): string[] {
    return this.calls.filter((call) => call.split(" ")[1] === id);
  }
}

const started: Worker[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((worker) => worker.stop()));
});

/** A worker with short timings (stopped after the test); starts failing are retried after ~50 ms. */
export function testWorker(options: Partial<WorkerOptions> & Pick<WorkerOptions, "root">): Worker {
  const worker = new Worker({
    client: options.client ?? testClient(),
    name: "w1",
    ttlMs: 2_000,
    expectedWorkers: 0,
    maxWorkers: 0,
    stopTimeoutMs: 1_000,
    startRetry: { initialMs: 50, maxMs: 200 },
    ...options,
  });
  started.push(worker);
  return worker;
}

export async function putTask(client: Etcd3, keys: KeyLayout, worker: string, task: Task): Promise<void> {
  await client.put(keys.task(worker, task.id)).value(JSON.stringify(task));
}

export async function putPlan(client: Etcd3, keys: KeyLayout, workers: string[]): Promise<void> {
  const plan: PlanRecord = {
    epoch: 1,
    leader: "test",
    at: new Date().toISOString(),
    workers,
    tasks: 0,
    moved: 0,
  };
  await client.put(keys.plan).value(JSON.stringify(plan));
}

/** Stored status keys of one worker: task id → status. */
export async function storedStatuses(
  client: Etcd3,
  keys: KeyLayout,
  worker: string,
): Promise<Map<string, TaskStatus>> {
  const prefix = keys.workerStatusPrefix(worker);
  const stored = await client.getAll().prefix(prefix).strings();
  return new Map(Object.entries(stored).map(([key, value]) => [key.slice(prefix.length), JSON.parse(value)]));
}

/** Records every state each status key of a worker goes through in etcd (`removed` for a delete). */
export async function recordStatuses(client: Etcd3, keys: KeyLayout, worker: string) {
  const history = new Map<string, string[]>();
  const watcher = new PrefixWatcher(client, keys.workerStatusPrefix(worker));
  watcher.on("change", (change) => {
    const id = keys.parseStatus(change.key)?.taskId ?? change.key;
    const states = history.get(id) ?? [];
    states.push(change.type === "put" ? (JSON.parse(change.value) as TaskStatus).state : "removed");
    history.set(id, states);
  });
  await watcher.start();
  afterEach(() => watcher.close());
  return { history, of: (id: string) => history.get(id) ?? [], close: () => watcher.close() };
}

/** Every start and stop of every worker's handler, in the order they happened, with their times. */
export class SharedRecord {
  readonly events: Array<{ worker: string; task: string; event: "start" | "stop"; at: number }> = [];
  private readonly running = new Map<string, Set<string>>();
  /** The most workers one task ever ran on at once. */
  mostAtOnce = 0;

  handler(worker: string): StartStopHandler {
    return {
      start: (task: Task) => {
        this.events.push({ worker, task: task.id, event: "start", at: Date.now() });
        const on = this.running.get(task.id) ?? new Set();
        on.add(worker);
        this.running.set(task.id, on);
        this.mostAtOnce = Math.max(this.mostAtOnce, on.size);
      },
      stop: (task: Task) => {
        this.events.push({ worker, task: task.id, event: "stop", at: Date.now() });
        this.running.get(task.id)?.delete(worker);
      },
    };
  }

  runsOn(task: string): string[] {
    return [...(this.running.get(task) ?? [])];
  }
  startedOn(task: string): string[] {
    return [
      ...new Set(this.events.filter((e) => e.task === task && e.event === "start").map((e) => e.worker)),
    ];
  }
}

/** A pino logger at `level` whose lines are kept (`lines`: raw JSON, `matching(msg)`: parsed lines with that message). */
export function capturingLogger(level = "warn") {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(...String(chunk).split("\n").filter(Boolean));
      done();
    },
  });
  const matching = (msg: string) =>
    lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line.msg === msg);
  return { logger: pino({ level }, sink), lines, matching };
}

/**
 * Workers w1 and w2 on one root with a short lease (so they audit the keys under it every TTL/2), a
 * shared record of their handlers' starts, and their logs; helpers to assign a task, read a status
 * and a worker's lease, and collect both workers' warnings of one kind.
 */
export async function twoWorkers(ttlMs: number, label: string) {
  const space = testSpace(label);
  const record = new SharedRecord();
  const logs = { w1: capturingLogger(), w2: capturingLogger() };
  const workers = (["w1", "w2"] as const).map((name) =>
    testWorker({
      root: space.root,
      name,
      ttlMs,
      handler: record.handler(name),
      logger: logs[name].logger,
      // Only the lock's changes, or the audit, may start a blocked copy: never the retry backoff.
      startRetry: { initialMs: 60_000, maxMs: 60_000 },
    }),
  );
  await Promise.all(workers.map((worker) => worker.start()));
  const { client, keys } = space;
  const putTask = (worker: string, id: string) =>
    client.put(keys.task(worker, id)).value(JSON.stringify({ id, payload: 1 }));
  const statusOf = async (worker: string, id: string): Promise<TaskStatus | undefined> =>
    (await storedStatuses(client, keys, worker)).get(id);
  const leaseOf = async (worker: string) =>
    (await client.get(keys.worker(worker)).exec()).kvs[0]?.lease as string;
  const warnings = (msg: string) => [...logs.w1.matching(msg), ...logs.w2.matching(msg)];
  return { ...space, record, putTask, statusOf, leaseOf, warnings };
}
