/**
 * The soak's fleet of REAL processes: a 3-member etcd on loopback (temporary data dirs, peer traffic
 * through proxies so a member can be isolated), masters and workers from `bin/escheduler.js`, each
 * reaching every member through proxies of its own (so its keep-alives can be delayed alone), and the
 * operator's commands run as the real CLI. It remembers what it did to each process (for the
 * invariant checker) and records every write under the root from the first revision.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Etcd3 } from "etcd3";
import type { EtcdCluster } from "../src/cli/etcd-process.js";
import { createEtcdClient, type KeyLayout, keyLayout, type Task } from "../src/node/index.js";
import {
  currentRevision,
  EtcdHistory,
  type Pause,
  type ProcessFate,
  withEtcdRetry,
} from "../test/invariants/index.js";
import { startPeerProxiedEtcdCluster, TcpProxy } from "../test/helpers/tcp-proxy.js";

const REPO = join(dirname(fileURLToPath(import.meta.url)), "..");
const BINARY = join(REPO, "bin", "escheduler.js");
const RECORDING_HANDLER = join(REPO, "test", "fixtures", "recording-handler.mjs");
const CONTROLLABLE_GENERATOR = join(REPO, "test", "fixtures", "controllable-generator.mjs");
/** How long a killed or paused process's requests already sent may still take to land in etcd. */
const IN_FLIGHT_MS = 100;
/** How long after a heal a request an isolated member held may still commit (4× the longest seen idle). */
const IN_FLIGHT_AFTER_HEAL_MS = 3_000;

export interface FleetSettings {
  dir: string;
  root: string;
  masters: string[];
  workers: string[];
  ttlMs: number;
  rebalanceWaitMs: number;
  intervalMs: number;
  maxMoving: number;
  /** How long each task takes to stop in the recording handler (overlaps show up). */
  stopDelayMs: number;
  /** How long each task takes to start after it is recorded (a slow start can be cut short). */
  startDelayMs: number;
  tasks: Task[];
}

/** One process run of a node (a restart is a new run with a new pid). */
export class NodeRun {
  readonly pauses: Pause[] = [];
  endedAt?: number;
  endedRevision?: number;
  /** Ended during (or just before) a member's isolation: a request it sent may land until then (see `healMembers`). */
  inFlightUntil?: number;
  exit?: { code: number | null; signal: NodeJS.Signals | null };
  /** Set when the soak signalled it to end (SIGKILL, SIGTERM); any other exit is unexpected. */
  signalled?: NodeJS.Signals;
  readonly exited: Promise<void>;

  constructor(
    readonly name: string,
    readonly role: "master" | "worker",
    readonly child: ChildProcess,
  ) {
    this.exited = new Promise((resolve) =>
      child.once("exit", (code, signal) => {
        this.exit = { code, signal };
        this.endedAt ??= now();
        resolve();
      }),
    );
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }
  get running(): boolean {
    return this.exit === undefined;
  }
  get paused(): boolean {
    const last = this.pauses.at(-1);
    return last !== undefined && last.to === undefined;
  }
  fate(): ProcessFate {
    const { name, role, endedAt, endedRevision, pauses, inFlightUntil } = this;
    return { pid: this.pid, name, role, endedAt, endedRevision, pauses, inFlightUntil };
  }
}

export class SoakFleet {
  readonly keys: KeyLayout;
  /** Whether an etcd member is cut off from its peers now. */
  private isolated = false;
  /** Until when requests held by the last isolated member may still commit (see `healMembers`). */
  private heldUntil = 0;
  /** Pauses and ends that overlapped a member's isolation: their in-flight allowance runs past the heal. */
  private readonly awaitingHeal: Array<{ inFlightUntil?: number }> = [];
  /** The soak's own client, on member 0 (never isolated). */
  readonly client: Etcd3;
  readonly runs: NodeRun[] = [];
  readonly recordFile: string;
  private readonly current = new Map<string, NodeRun>();
  private readonly generatorFile: string;
  private memberIds: string[] = [];

  private constructor(
    readonly settings: FleetSettings,
    readonly etcd: EtcdCluster,
    private readonly peerProxies: TcpProxy[],
    /** Per node, one proxy in front of each member's client port. */
    private readonly links: Map<string, TcpProxy[]>,
    readonly history: EtcdHistory,
    client: Etcd3,
  ) {
    this.keys = keyLayout(settings.root);
    this.client = client;
    this.recordFile = join(settings.dir, "task-events.jsonl");
    this.generatorFile = join(settings.dir, "generator.json");
    mkdirSync(join(settings.dir, "logs"), { recursive: true });
  }

  /** etcd, proxies and the history recorder; no escheduler process yet. */
  static async create(settings: FleetSettings): Promise<SoakFleet> {
    const { etcd, peerProxies } = await startPeerProxiedEtcdCluster(3);
    const links = new Map<string, TcpProxy[]>();
    for (const name of [...settings.masters, ...settings.workers]) {
      const proxies = etcd.members.map(
        (member) => new TcpProxy({ host: "127.0.0.1", port: member.spec.clientPort }),
      );
      await Promise.all(proxies.map((proxy) => proxy.start()));
      links.set(name, proxies);
    }
    const client = createEtcdClient({ etcd: [etcd.members[0].hostPort], dialTimeout: 5_000 });
    const history = await EtcdHistory.record(client, keyLayout(settings.root).prefix);
    const fleet = new SoakFleet(settings, etcd, peerProxies, links, history, client);
    fleet.memberIds = await Promise.all(
      etcd.members.map(async (member) => {
        const probe = createEtcdClient({ etcd: [member.hostPort], dialTimeout: 2_000 });
        try {
          return BigInt((await withEtcdRetry(() => probe.maintenance.status())).header.member_id).toString(
            16,
          );
        } finally {
          probe.close();
        }
      }),
    );
    fleet.setTasks(settings.tasks);
    return fleet;
  }

  /** What the generator returns from its next call on. */
  setTasks(tasks: Task[]): void {
    writeFileSync(this.generatorFile, JSON.stringify({ tasks, behaviour: "ok" }));
  }

  node(name: string): NodeRun | undefined {
    return this.current.get(name);
  }

  /** Starts `name` (a master or a worker of the settings) unless a run of it is still alive. */
  start(name: string): NodeRun {
    const running = this.current.get(name);
    if (running?.running) return running;
    const { settings } = this;
    const role = settings.masters.includes(name) ? "master" : "worker";
    const etcd = (this.links.get(name) ?? []).map((proxy) => proxy.hostPort).join(",");
    const shared = ["--name", name, "--etcd", etcd, "--root", settings.root, "--ttl", `${settings.ttlMs}ms`];
    const args =
      role === "master"
        ? [
            "master",
            ...shared,
            ...["--generator", CONTROLLABLE_GENERATOR, "--rebalance-wait", `${settings.rebalanceWaitMs}ms`],
            ...["--interval", `${settings.intervalMs}ms`, "--timeout", "5s"],
            ...["--max-moving", String(settings.maxMoving)],
          ]
        : ["worker", ...shared, "--handler", RECORDING_HANDLER, "--stop-timeout", "2s"];
    const log = openSync(join(settings.dir, "logs", `${name}.log`), "a");
    const child = spawn(process.execPath, [BINARY, ...args], {
      cwd: REPO,
      env: {
        ...process.env,
        ESCHEDULER_GENERATOR_FILE: this.generatorFile,
        ESCHEDULER_RECORD_FILE: this.recordFile,
        ESCHEDULER_RECORD_STOP_MS: String(settings.stopDelayMs),
        ESCHEDULER_RECORD_START_MS: String(settings.startDelayMs),
      },
      stdio: ["ignore", log, log],
    });
    closeSync(log);
    const run = new NodeRun(name, role, child);
    this.current.set(name, run);
    this.runs.push(run);
    return run;
  }

  /** SIGKILL: nothing runs in it from this moment. */
  async kill(name: string): Promise<void> {
    const run = this.current.get(name);
    if (!run?.running) return;
    run.signalled = "SIGKILL";
    run.endedAt = now();
    run.child.kill("SIGKILL");
    await this.ended(run);
  }

  /** SIGTERM; resolves once the process exited (it drains first). */
  async terminate(name: string): Promise<void> {
    const run = this.current.get(name);
    if (!run?.running) return;
    run.signalled = "SIGTERM";
    run.child.kill("SIGTERM");
    await this.ended(run);
  }

  private async ended(run: NodeRun): Promise<void> {
    await run.exited;
    if (this.isolated) this.awaitingHeal.push(run);
    else if ((run.endedAt ?? 0) < this.heldUntil) run.inFlightUntil = this.heldUntil;
    await delay(IN_FLIGHT_MS);
    if (this.isolated) this.awaitingHeal.push(run);
    run.endedRevision = await this.revision();
  }

  /** SIGSTOP: nothing runs in it until `cont`. */
  async stop(name: string): Promise<void> {
    const run = this.current.get(name);
    if (!run?.running || run.paused) return;
    run.child.kill("SIGSTOP");
    const from = now();
    const isolated = this.isolated;
    await delay(IN_FLIGHT_MS);
    const pause: Pause = { from, fromRevision: await this.revision() };
    run.pauses.push(pause);
    if (isolated || this.isolated) this.awaitingHeal.push(pause);
    // Fallen silent just after a heal: what it sent before the heal may still be held and commit.
    else if (from < this.heldUntil) pause.inFlightUntil = this.heldUntil;
  }

  /** SIGCONT. */
  async cont(name: string): Promise<void> {
    const run = this.current.get(name);
    const pause = run?.pauses.at(-1);
    if (!run || !pause || pause.to !== undefined) return;
    pause.toRevision = await this.revision();
    pause.to = now();
    run.child.kill("SIGCONT");
  }

  /** The revision etcd is at (retried through an election of etcd's own leader). */
  revision(): Promise<number> {
    return currentRevision(this.client, this.keys.plan);
  }

  /** Delays everything between `name` and etcd by `ms` each way (0: no delay). */
  setLatency(name: string, ms: number): void {
    for (const proxy of this.links.get(name) ?? []) proxy.setLatency(ms);
  }

  /** Cuts member `index` off from its peers (its process keeps running and answering clients). */
  isolate(index: number): void {
    this.isolated = true;
    // A request sent just before a silence that began just before the isolation may be in the member too.
    for (const run of this.runs) {
      if (run.role !== "master") continue;
      const pause = run.pauses.at(-1);
      if (pause && pause.to === undefined) this.awaitingHeal.push(pause);
      if (run.endedAt !== undefined && now() - run.endedAt < 1_000) this.awaitingHeal.push(run);
    }
    this.peerProxies[index].partition();
    for (const [i, proxy] of this.peerProxies.entries()) {
      if (i !== index) proxy.partitionFrom(this.memberIds[index]);
    }
  }

  /**
   * Lets every member reach every other again. A request sent to an isolated member before its sender
   * fell silent can be held in that member's transport (a proposal forwarded to a leader it cannot
   * reach) and committed only once the links are back — after the heal, while its sender is still
   * stopped: seen in seed 23's round 50 (a hand-off completion of the SIGSTOPped leader, fenced on its
   * still-live campaign key, committed 2.2 s after the stop) and reproduced with a stopped client
   * alone: committed 113–717 ms after the heal in 24 tries on an idle machine, sometimes after writes
   * sent after the heal (so no revision bounds it). The silences that overlapped the isolation, or began
   * within `IN_FLIGHT_AFTER_HEAL_MS` after it (a request sent just before the heal), may see such
   * writes until that long after it.
   */
  healMembers(): void {
    for (const proxy of this.peerProxies) proxy.heal();
    this.isolated = false;
    const until = now() + IN_FLIGHT_AFTER_HEAL_MS;
    this.heldUntil = until;
    for (const silent of this.awaitingHeal.splice(0)) silent.inFlightUntil = until;
  }

  /** Runs `escheduler <args>` against member 0; resolves with its exit code and output. */
  operator(args: string[], timeoutMs = 30_000): Promise<{ code: number | null; output: string }> {
    const child = spawn(
      process.execPath,
      [BINARY, ...args, "--etcd", this.etcd.members[0].hostPort, "--root", this.settings.root],
      { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] },
    );
    let output = "";
    child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    return new Promise((resolve) =>
      child.once("close", (code) => {
        clearTimeout(timer);
        resolve({ code, output: output.trim() });
      }),
    );
  }

  fates(): ProcessFate[] {
    return this.runs.map((run) => run.fate());
  }

  /** Kills every process, stops the proxies and etcd, removes etcd's data. */
  async close(): Promise<void> {
    for (const run of this.runs) if (run.paused) run.child.kill("SIGCONT");
    for (const run of this.runs) if (run.running) run.child.kill("SIGKILL");
    await Promise.all(this.runs.map((run) => run.exited));
    await this.history.close().catch(() => undefined);
    this.client.close();
    const proxies = [...this.peerProxies, ...[...this.links.values()].flat()];
    await Promise.all(proxies.map((proxy) => proxy.stop()));
    await this.etcd.destroy();
  }
}

/** Wall-clock ms with the recording handler's precision. */
export function now(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * `call`, tried again while etcd fails it transiently (a leader change, no leader, unavailable, a
 * deadline) for up to `timeoutMs`: the soak's own reads ride out etcd's faults. Other errors throw.
 */
export function retried<T>(call: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
  return withEtcdRetry(call, { timeoutMs });
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
