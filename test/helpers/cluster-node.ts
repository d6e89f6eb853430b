/**
 * The parts of an e2e cluster that are not the cluster itself: its options, one process of it
 * (EschedulerNode), the task lists tests start it with, and what it leaves for a failed test to read
 * (the processes' warnings, and with ESCHEDULER_E2E_LOGS every log, fate and the etcd history).
 */
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { EtcdConnectionConfig, Task } from "../../src/node/index.js";
import type { CliExit, CliProcess } from "./cli.js";
import type { Pause, ProcessFate } from "../invariants/index.js";

/** Flags, environment and client settings that reach a secured etcd (TLS, auth). */
export interface EtcdAccess {
  args: string[];
  env?: NodeJS.ProcessEnv;
  client: Partial<EtcdConnectionConfig>;
}

export interface ClusterOptions {
  /** Default: the run's shared etcd. */
  endpoints?: string[];
  root?: string;
  ttl?: string;
  rebalanceWait?: string;
  interval?: string;
  /** The master's generator deadline (`--timeout`). */
  generatorTimeout?: string;
  handoff?: "wait" | "immediate";
  stopTimeout?: string;
  /** How long each task takes to stop in the recording handler (default 100 ms). */
  stopDelayMs?: number;
  /** What the generator returns at first. */
  tasks?: Task[];
  access?: EtcdAccess;
  logLevel?: string;
  /** How long a resumed process may take to stop its stale tasks (see `runIntervals`). */
  wakeGraceMs?: number;
}

/** `count` unit tasks spread over `groups` groups: task-00 (g0), task-01 (g1), … */
export function unitTasks(count: number, groups = 2, prefix = "task"): Task[] {
  return Array.from({ length: count }, (_, i) => ({
    id: `${prefix}-${String(i).padStart(2, "0")}`,
    group: `g${i % groups}`,
  }));
}

/** One escheduler process of the cluster. */
export class EschedulerNode {
  readonly pauses: Pause[] = [];
  endedAt?: number;
  endedRevision?: number;
  exit?: CliExit;

  constructor(
    readonly name: string,
    readonly role: "master" | "worker",
    readonly process: CliProcess,
    /** host:port of its HTTP endpoint (masters). */
    readonly http?: string,
  ) {
    void process.exited.then((exit) => {
      this.exit = exit;
      this.endedAt ??= now();
    });
  }

  get pid(): number {
    return this.process.pid;
  }
  get paused(): boolean {
    const last = this.pauses.at(-1);
    return last !== undefined && last.to === undefined;
  }
  /** Running and not paused. */
  get live(): boolean {
    return this.process.running && !this.paused;
  }
  /** SIGKILL: the process counts as stopped at this moment. Resolves with the kill time. */
  async kill(revisionNow: () => Promise<number>): Promise<number> {
    this.process.stop("SIGKILL");
    const killedAt = now();
    this.endedAt = killedAt;
    await this.process.exited;
    await delay(IN_FLIGHT_MS);
    this.endedRevision = await revisionNow();
    return killedAt;
  }

  /** SIGSTOP: nothing runs in it until `resume`. Resolves with the pause time. */
  async pause(revisionNow: () => Promise<number>): Promise<number> {
    process.kill(this.pid, "SIGSTOP");
    const from = now();
    await delay(IN_FLIGHT_MS);
    this.pauses.push({ from, fromRevision: await revisionNow() });
    return from;
  }

  /** SIGCONT. Resolves with the resume time. */
  async resume(revisionNow: () => Promise<number>): Promise<number> {
    const pause = this.pauses.at(-1);
    if (!pause || pause.to !== undefined) throw new Error(`${this.name} is not paused`);
    pause.toRevision = await revisionNow();
    pause.to = now();
    process.kill(this.pid, "SIGCONT");
    return pause.to;
  }

  fate(): ProcessFate {
    return {
      pid: this.pid,
      name: this.name,
      role: this.role,
      endedAt: this.endedAt,
      endedRevision: this.endedRevision,
      pauses: this.pauses,
    };
  }
}

/** How long a killed or paused process's in-flight requests may still take to land in etcd. */
const IN_FLIGHT_MS = 100;

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Last lines that warn or worse, of each process. */
export function nodeDiagnostics(nodes: Iterable<EschedulerNode>): string {
  return [...nodes]
    .map((node) => {
      const lines = `${node.process.stdout}\n${node.process.stderr}`
        .split("\n")
        .filter((line) => line.trim() !== "" && !/"level":(10|20|30),/.test(line))
        .slice(-8)
        .map((line) => `    ${line.slice(0, 400)}`);
      const state = node.process.running
        ? node.paused
          ? "paused"
          : "running"
        : `exited ${node.exit?.code ?? node.exit?.signal}`;
      return `  ${node.name} (${node.role}, pid ${node.pid}, ${state})\n${lines.join("\n")}`;
    })
    .join("\n");
}

/** With ESCHEDULER_E2E_LOGS=<dir>: every process's output, the task events and the etcd history land there. */
export function keepLogs(
  root: string,
  nodes: Iterable<EschedulerNode>,
  run: { fates: ProcessFate[]; history: readonly unknown[]; recordFile: string },
): void {
  const target = process.env.ESCHEDULER_E2E_LOGS;
  if (!target) return;
  const dir = join(target, root);
  mkdirSync(dir, { recursive: true });
  for (const node of nodes)
    writeFileSync(join(dir, `${node.name}-${node.pid}.log`), `${node.process.stdout}${node.process.stderr}`);
  writeFileSync(join(dir, "fates.json"), JSON.stringify(run.fates, null, 1));
  writeFileSync(join(dir, "history.jsonl"), run.history.map((e) => JSON.stringify(e)).join("\n"));
  if (existsSync(run.recordFile)) copyFileSync(run.recordFile, join(dir, "task-events.jsonl"));
}

/** Wall-clock ms with the recording handler's precision. */
export function now(): number {
  return performance.timeOrigin + performance.now();
}
