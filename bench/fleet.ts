/**
 * Real `bin/escheduler.js` processes (the built dist/) on one fresh root, with the recording handler
 * and the controllable generator serving a fixed task list: what the failover and rolling-update
 * benchmarks start, signal and measure.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createEtcdClient, keyLayout, type Task } from "../src/node/index.js";
import {
  convergenceProblems,
  readState,
  readTaskEvents,
  runIntervals,
  type TaskEvent,
} from "../test/invariants/index.js";

const REPO = join(dirname(fileURLToPath(import.meta.url)), "..");
const BINARY = join(REPO, "bin", "escheduler.js");
const HANDLER = join(REPO, "test", "fixtures", "recording-handler.mjs");
const GENERATOR = join(REPO, "test", "fixtures", "controllable-generator.mjs");

/** The built dist/ is what the binary runs. */
export function build(): void {
  const tsc = join(REPO, "node_modules", "typescript", "bin", "tsc");
  spawnSync(process.execPath, [tsc, "-p", "tsconfig.build.json"], { cwd: REPO, stdio: "ignore" });
}

/** escheduler processes on one fresh root, with the recording handler and a fixed task list. */
export class Fleet {
  private readonly dir = mkdtempSync(join(tmpdir(), "escheduler-bench-"));
  private readonly keys = keyLayout(
    `bench-${process.pid}-${Date.now()}-${Math.random().toString(16).slice(2, 8)}`,
  );
  private readonly client;
  private readonly processes = new Map<string, ChildProcess>();
  /** Workers started and not signalled. */
  private readonly workers = new Set<string>();
  private readonly killedAt = new Map<number, number>();
  private readonly recordFile = join(this.dir, "events.jsonl");
  private readonly generatorFile = join(this.dir, "generator.json");

  constructor(
    private readonly endpoints: string[],
    private readonly taskList: Task[],
    private readonly options: { ttlMs: number },
  ) {
    this.client = createEtcdClient({ etcd: endpoints });
    writeFileSync(this.generatorFile, JSON.stringify({ tasks: taskList }));
  }

  /** A master with the controllable generator, no periodic schedule, and `flags` (e.g. `--rebalance-wait`). */
  master(name: string, flags: string[] = []): void {
    this.spawn(name, ["master", "--generator", GENERATOR, "--interval", "1h", ...flags]);
  }

  worker(name: string, flags: string[] = []): void {
    this.workers.add(name);
    this.spawn(name, ["worker", "--handler", HANDLER, ...flags]);
  }

  private spawn(name: string, args: string[]): void {
    const child = spawn(
      process.execPath,
      [
        BINARY,
        ...args,
        "--name",
        name,
        "--etcd",
        this.endpoints.join(","),
        "--root",
        this.keys.root,
        "--ttl",
        `${this.options.ttlMs}ms`,
        "--log-level",
        "warn",
      ],
      {
        env: {
          ...process.env,
          ESCHEDULER_RECORD_FILE: this.recordFile,
          ESCHEDULER_GENERATOR_FILE: this.generatorFile,
        },
        stdio: "ignore",
      },
    );
    this.processes.set(name, child);
  }

  /** `escheduler probe --worker <name>`'s exit code (0: ready). */
  probe(name: string): Promise<number | null> {
    const child = spawn(
      process.execPath,
      [BINARY, "probe", "--worker", name, "--etcd", this.endpoints.join(","), "--root", this.keys.root],
      { stdio: "ignore" },
    );
    return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
  }

  /** Resolves with the exit code once the process has exited. */
  exited(name: string): Promise<number | null> {
    const child = this.processes.get(name);
    if (!child || child.exitCode !== null || child.signalCode !== null)
      return Promise.resolve(child?.exitCode ?? null);
    return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
  }

  /** The handlers' start/stop records so far. */
  events(): TaskEvent[] {
    return readTaskEvents(this.recordFile);
  }

  /** Sends `signal`; resolves the moment it was sent. */
  signal(name: string, signal: NodeJS.Signals): number {
    const child = this.processes.get(name);
    child?.kill(signal);
    this.workers.delete(name);
    const at = performance.timeOrigin + performance.now();
    if (signal === "SIGKILL" && child?.pid) this.killedAt.set(child.pid, at);
    return at;
  }

  async leading(name: string): Promise<void> {
    await until(`${name} to lead`, async () => {
      const { view } = await readState(this.client, this.keys);
      return view.leader === name;
    });
  }

  async registered(name: string): Promise<void> {
    await until(`${name} to register`, async () =>
      (await readState(this.client, this.keys)).view.workers.has(name),
    );
  }

  /** Resolves once every task runs on exactly one of the running workers, as planned. */
  async converged(timeoutMs = 30_000): Promise<void> {
    const live = [...this.workers];
    let problems: string[] = [];
    await until(
      "convergence",
      async () => {
        const { view } = await readState(this.client, this.keys);
        const fates = [...this.killedAt].map(([pid, endedAt]) => ({
          pid,
          name: "",
          role: "worker" as const,
          endedAt,
          pauses: [],
        }));
        const { intervals } = runIntervals(readTaskEvents(this.recordFile), fates);
        problems = convergenceProblems(view, this.taskList, live, intervals);
        return problems.length === 0;
      },
      timeoutMs,
      () => problems.slice(0, 5).join("; "),
    );
  }

  async assignedTo(worker: string): Promise<string[]> {
    const { assignment } = await readState(this.client, this.keys);
    return assignment.get(worker) ?? [];
  }

  /** The time from `since` until the last of `taskIds` started on another process than `from`'s. */
  movedWithin(taskIds: string[], since: number, from: string): number {
    const pid = this.processes.get(from)?.pid;
    const events = readTaskEvents(this.recordFile);
    return Math.max(
      ...taskIds.map((task) => {
        const start = events.find(
          (e) => e.event === "start" && e.task === task && e.t > since && e.pid !== pid,
        );
        return (start?.t ?? Number.POSITIVE_INFINITY) - since;
      }),
    );
  }

  /** Peak resident set size of a running process, from /proc (Linux). */
  peakMB(name: string): number {
    const pid = this.processes.get(name)?.pid;
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? Number.NaN);
    return kb / 1024;
  }

  async close(): Promise<void> {
    await Promise.all(
      [...this.processes.values()].map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once("exit", () => resolve());
            child.kill("SIGKILL");
          }),
      ),
    );
    await this.client
      .delete()
      .prefix(this.keys.prefix)
      .catch(() => undefined);
    this.client.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export async function until(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 30_000,
  why: () => string = () => "",
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`failover bench: no ${what} within ${timeoutMs}ms: ${why()}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
