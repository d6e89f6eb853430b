/**
 * A cluster of REAL `bin/escheduler.js` processes on one root: masters running the controllable
 * generator, workers running the recording handler. It kills, terminates, pauses and resumes them,
 * remembers what it did (for the invariant checker), records every write under the root, and judges
 * convergence. Every cluster is torn down after its test.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Etcd3 } from "etcd3";
import { afterEach } from "vitest";
import { readLeader } from "../../src/readiness/index.js";
import { createEtcdClient, type KeyLayout, keyLayout, type Task } from "../../src/node/index.js";
import { type CliExit, CliProcess, ensureBuilt, REPO } from "./cli.js";
import {
  type ClusterOptions,
  EschedulerNode,
  keepLogs,
  nodeDiagnostics,
  now,
  unitTasks,
} from "./cluster-node.js";
import { etcdEndpoints, uniqueRoot } from "./context.js";
import { freePort } from "./etcd.js";
import {
  type Assignment,
  balanceProblems,
  convergenceProblems,
  currentRevision,
  EtcdHistory,
  type Pause,
  type ProcessFate,
  type RunInterval,
  readState,
  readTaskEvents,
  runIntervals,
  safetyProblems,
  type TaskEvent,
} from "../invariants/index.js";

export const RECORDING_HANDLER = join(REPO, "test", "fixtures", "recording-handler.mjs");
export const CONTROLLABLE_GENERATOR = join(REPO, "test", "fixtures", "controllable-generator.mjs");
export { type ClusterOptions, type EtcdAccess, EschedulerNode, now, unitTasks } from "./cluster-node.js";

const open = new Set<Cluster>();
afterEach(async () => {
  await Promise.all([...open].map((cluster) => cluster.close()));
});

export class Cluster {
  readonly keys: KeyLayout;
  readonly client: Etcd3;
  readonly nodes = new Map<string, EschedulerNode>();
  /** Earlier processes of names started again. */
  private readonly replaced: EschedulerNode[] = [];
  readonly dir: string;
  readonly recordFile: string;
  readonly generatorFile: string;
  readonly endpoints: string[];
  /** Every master runs with --http-admin and this bearer token (POST /schedule needs it). */
  readonly adminToken = "cluster-admin-token";
  /** Set once the recorder runs (`Cluster.create`). */
  history!: EtcdHistory;
  private tasks: Task[] = [];
  private readonly started = now();
  private closed?: Promise<void>;

  private constructor(readonly options: ClusterOptions) {
    this.endpoints = options.endpoints ?? etcdEndpoints();
    this.keys = keyLayout(options.root ?? uniqueRoot("e2e"));
    this.client = createEtcdClient({ ...options.access?.client, etcd: this.endpoints, dialTimeout: 5_000 });
    this.dir = mkdtempSync(join(tmpdir(), "escheduler-e2e-"));
    this.recordFile = join(this.dir, "task-events.jsonl");
    this.generatorFile = join(this.dir, "generator.json");
    this.setTasks(options.tasks ?? unitTasks(24));
  }

  /** A cluster with nothing running yet (the history recorder is on). */
  static async create(options: ClusterOptions = {}): Promise<Cluster> {
    await ensureBuilt();
    const cluster = new Cluster(options);
    open.add(cluster);
    cluster.history = await EtcdHistory.record(cluster.client, cluster.keys.prefix);
    return cluster;
  }

  /** Masters m1…, then workers w1…, then waits for convergence. */
  static async start(
    options: ClusterOptions & { masters?: number; workers?: number } = {},
  ): Promise<Cluster> {
    const cluster = await Cluster.create(options);
    for (let i = 1; i <= (options.masters ?? 2); i++) await cluster.startMaster(`m${i}`);
    for (let i = 1; i <= (options.workers ?? 4); i++) cluster.startWorker(`w${i}`);
    await cluster.waitConverged();
    return cluster;
  }

  get root(): string {
    return this.keys.root;
  }

  private shared(): string[] {
    const { ttl = "2s", logLevel = "info", access } = this.options;
    return ["--root", this.root, "--ttl", ttl, "--log-level", logLevel, ...(access?.args ?? [])];
  }

  async startMaster(
    name: string,
    options: { etcd?: string[]; args?: string[]; env?: NodeJS.ProcessEnv } = {},
  ): Promise<EschedulerNode> {
    const http = `127.0.0.1:${await freePort()}`;
    const {
      rebalanceWait = "200ms",
      interval = "60s",
      generatorTimeout = "2s",
      handoff = "wait",
    } = this.options;
    const args = [
      ...["master", "--name", name, "--etcd", (options.etcd ?? this.endpoints).join(","), ...this.shared()],
      ...["--generator", CONTROLLABLE_GENERATOR, "--rebalance-wait", rebalanceWait, "--interval", interval],
      ...["--timeout", generatorTimeout, "--handoff", handoff, "--http", http, "--http-admin"],
      ...(options.args ?? []),
    ];
    const env = {
      ESCHEDULER_GENERATOR_FILE: this.generatorFile,
      ESCHEDULER_ADMIN_TOKEN: this.adminToken,
      ...options.env,
    };
    return this.add(name, "master", args, env, http);
  }

  startWorker(name: string, options: { etcd?: string[]; args?: string[] } = {}): EschedulerNode {
    const args = [
      ...["worker", "--name", name, "--etcd", (options.etcd ?? this.endpoints).join(","), ...this.shared()],
      ...["--handler", RECORDING_HANDLER, "--stop-timeout", this.options.stopTimeout ?? "2s"],
      ...(options.args ?? []),
    ];
    return this.add(name, "worker", args, {
      ESCHEDULER_RECORD_FILE: this.recordFile,
      ESCHEDULER_RECORD_STOP_MS: String(this.options.stopDelayMs ?? 100),
    });
  }

  private add(
    name: string,
    role: "master" | "worker",
    args: string[],
    env: NodeJS.ProcessEnv,
    http?: string,
  ): EschedulerNode {
    const previous = this.nodes.get(name);
    if (previous?.process.running) throw new Error(`${name} is already running`);
    // A process restarted under its name: the old one's fate still bounds what it ran.
    if (previous) this.replaced.push(previous);
    const child = new CliProcess(args, { env: { ...this.options.access?.env, ...env } });
    const node = new EschedulerNode(name, role, child, http);
    this.nodes.set(name, node);
    return node;
  }

  node(name: string): EschedulerNode {
    const node = this.nodes.get(name);
    if (!node) throw new Error(`no node ${name}`);
    return node;
  }

  /** Running, unpaused workers' names. */
  liveWorkers(): string[] {
    return [...this.nodes.values()]
      .filter((node) => node.role === "worker" && node.live)
      .map((node) => node.name);
  }

  /** SIGKILL: the process counts as stopped at this moment. Resolves with the kill time. */
  kill(name: string): Promise<number> {
    return this.node(name).kill(() => currentRevision(this.client, this.keys.plan));
  }

  /** SIGTERM, and the exit. */
  async terminate(name: string): Promise<CliExit & { signalledAt: number }> {
    const signalledAt = now();
    const exit = await this.node(name).process.stop("SIGTERM");
    return { ...exit, signalledAt };
  }

  /** SIGSTOP: nothing runs in it until `resume`. Resolves with the pause time. */
  pause(name: string): Promise<number> {
    return this.node(name).pause(() => currentRevision(this.client, this.keys.plan));
  }

  /** SIGCONT. Resolves with the resume time. */
  resume(name: string): Promise<number> {
    return this.node(name).resume(() => currentRevision(this.client, this.keys.plan));
  }

  /** What the generator returns from its next call on. */
  setTasks(tasks: Task[]): void {
    this.tasks = tasks;
    this.writeGenerator("ok");
  }

  /** Makes the generator misbehave (see test/fixtures/controllable-generator.mjs), or behave ("ok"). */
  setBehaviour(behaviour: "ok" | "throw" | "hang" | "duplicate" | "bad-id" | "oversize" | "non-json"): void {
    this.writeGenerator(behaviour);
  }

  get generatedTasks(): Task[] {
    return this.tasks;
  }

  private writeGenerator(behaviour: string): void {
    writeFileSync(this.generatorFile, JSON.stringify({ tasks: this.tasks, behaviour }));
  }

  /** `POST /schedule` on the leading master. */
  async schedule(): Promise<{ status: number; body: string }> {
    const leader = await this.leader();
    const http = leader && this.nodes.get(leader)?.http;
    if (!http) throw new Error(`no leading master of this cluster to ask (leader: ${leader})`);
    const response = await fetch(`http://${http}/schedule?reason=test`, {
      method: "POST",
      headers: { Authorization: `Bearer ${this.adminToken}`, "Content-Type": "application/json" },
      signal: AbortSignal.timeout(15_000),
    });
    return { status: response.status, body: await response.text() };
  }

  leader(): Promise<string | undefined> {
    return readLeader(this.client, this.keys);
  }

  state(): Promise<Awaited<ReturnType<typeof readState>>> {
    return readState(this.client, this.keys);
  }

  events(): TaskEvent[] {
    return readTaskEvents(this.recordFile);
  }

  fates(): ProcessFate[] {
    return [...this.replaced, ...this.nodes.values()].map((node) => node.fate());
  }

  intervals(): { intervals: RunInterval[]; problems: string[] } {
    return runIntervals(this.events(), this.fates(), { wakeGraceMs: this.options.wakeGraceMs });
  }

  /** Why the cluster has not converged on `workers` (default: the live ones); empty once it has. */
  async convergenceProblems(
    workers = this.liveWorkers(),
    tasks: readonly Task[] = this.tasks,
  ): Promise<string[]> {
    const { view } = await this.state();
    const { intervals } = this.intervals();
    const unexpected = [...this.nodes.values()]
      .filter((node) => node.exit && node.endedRevision === undefined && node.exit.code !== 0)
      .map((node) => `${node.name} exited with ${node.exit?.code ?? node.exit?.signal}`);
    return [...unexpected, ...convergenceProblems(view, tasks, workers, intervals)];
  }

  /**
   * Waits until every task (of `tasks`, default: all generated) runs on exactly one of `workers`
   * (default: the live ones), as planned; resolves with the assignment.
   */
  async waitConverged(
    options: { timeoutMs?: number; workers?: string[]; tasks?: readonly Task[] } = {},
  ): Promise<Assignment> {
    const timeoutMs = options.timeoutMs ?? 20_000;
    const deadline = Date.now() + timeoutMs;
    let problems: string[] = [];
    for (;;) {
      try {
        problems = await this.convergenceProblems(options.workers, options.tasks);
        if (problems.length === 0) return (await this.state()).assignment;
      } catch (error) {
        problems = [`cannot read the cluster: ${String(error)}`];
      }
      if (Date.now() > deadline) {
        throw new Error(
          `not converged after ${timeoutMs}ms:\n  ${problems.slice(0, 15).join("\n  ")}\n${this.diagnostics()}`,
        );
      }
      await delay(50);
    }
  }

  /**
   * Every invariant at the end of a scenario: the safety promises (no double run, no write by a deposed
   * or paused leader), converged, balanced — `drained` workers (cordoned or drained) left out of the
   * balance check. Resolves with the violations (empty when every promise held).
   */
  async invariantProblems(options: { drained?: readonly string[] } = {}): Promise<string[]> {
    await this.history.caughtUp(this.client);
    const { assignment } = await this.state();
    for (const worker of options.drained ?? []) assignment.delete(worker);
    return [
      ...safetyProblems({
        events: this.events(),
        fates: this.fates(),
        history: this.history,
        keys: this.keys,
        wakeGraceMs: this.options.wakeGraceMs,
        base: this.started,
      }),
      ...(await this.convergenceProblems()),
      ...balanceProblems(assignment, this.tasks),
    ];
  }

  /** The earliest start of `task` after `after`, on a process other than `exceptPid`. */
  firstStart(task: string, after: number, exceptPid?: number): TaskEvent | undefined {
    return this.events().find(
      (event) => event.event === "start" && event.task === task && event.t > after && event.pid !== exceptPid,
    );
  }

  /** Last lines that warn or worse, of each process. */
  diagnostics(): string {
    return nodeDiagnostics(this.nodes.values());
  }

  /** Kills every process, stops recording, removes the files. Idempotent. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      open.delete(this);
      await Promise.all([...this.nodes.values()].map((node) => node.process.stop("SIGKILL")));
      await this.history?.close().catch(() => undefined);
      this.client.close();
      keepLogs(this.root, this.nodes.values(), {
        fates: this.fates(),
        history: this.history?.events ?? [],
        recordFile: this.recordFile,
      });
      rmSync(this.dir, { recursive: true, force: true });
    })();
    return this.closed;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
