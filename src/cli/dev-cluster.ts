/** The processes of `escheduler dev`: a throw-away etcd, one master and N workers of the real binary. */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { EschedulerError } from "../errors.js";
import { type EtcdMember, freePort, startEtcd } from "./etcd-process.js";

const BINARY = fileURLToPath(new URL("../../bin/escheduler.js", import.meta.url));
const EXAMPLE_GENERATOR = fileURLToPath(new URL("../../examples/generator.mjs", import.meta.url));
const EXAMPLE_HANDLER = fileURLToPath(new URL("../../examples/handler.mjs", import.meta.url));

/** Short leases and waits so that joins, leaves and crashes show within a couple of seconds. */
const DEV_TIMINGS = ["--ttl", "2s", "--dial-timeout", "5s"];
const MASTER_TIMINGS = ["--rebalance-wait", "300ms", "--interval", "30s", "--barrier-timeout", "20s"];
const WORKER_TIMINGS = ["--stop-timeout", "5s"];
/** How long a node may take to stop after SIGTERM before it is killed. */
const STOP_GRACE_MS = 10_000;

export interface DevClusterOptions {
  workers: number;
  tasks: number;
  logLevel: string;
  /** Folder for etcd's data and the nodes' logs; the caller removes it. */
  tempDir: string;
  /** Use this etcd instead of starting one. */
  etcd?: string[];
  root: string;
  /** Serve the console's operator actions on the master, guarded by this bearer token. */
  adminToken?: string;
}

export interface NodeExit {
  node: DevNode;
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** One master or worker process; its output goes to `logPath`. */
export class DevNode {
  readonly exited: Promise<NodeExit>;
  private readonly child: ChildProcess;

  constructor(
    readonly name: string,
    readonly role: "master" | "worker",
    readonly httpUrl: string,
    readonly logPath: string,
    args: string[],
    env: NodeJS.ProcessEnv,
  ) {
    const log = openSync(logPath, "a");
    try {
      // Its own process group: a Ctrl-C or a signal to dev's group reaches dev alone, which then stops
      // the nodes in order (master first); otherwise each node would see two signals and exit at once.
      this.child = spawn(process.execPath, [BINARY, role, ...args], {
        stdio: ["ignore", log, log],
        env,
        detached: true,
      });
    } finally {
      closeSync(log);
    }
    this.exited = new Promise((resolve) => {
      this.child.once("exit", (code, signal) => resolve({ node: this, code, signal }));
      this.child.once("error", () => resolve({ node: this, code: null, signal: null }));
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }
  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Sends `signal` (SIGTERM: graceful) and waits for the exit; kills after the grace period. */
  async stop(signal: NodeJS.Signals = "SIGTERM", graceMs = STOP_GRACE_MS): Promise<NodeExit> {
    if (this.running) this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** The last lines of the node's log (to explain an unexpected exit). */
  logTail(lines = 5): string[] {
    if (!existsSync(this.logPath)) return [];
    return readFileSync(this.logPath, "utf8").trimEnd().split("\n").slice(-lines);
  }
}

/** A running local cluster. `stop()` ends every process it started and is idempotent. */
export class DevCluster {
  readonly nodes: DevNode[] = [];
  private workerCount = 0;
  private stopping?: Promise<NodeExit[]>;

  private constructor(
    readonly endpoints: string[],
    private readonly etcd: EtcdMember | undefined,
    private readonly options: DevClusterOptions,
  ) {}

  static async start(options: DevClusterOptions): Promise<DevCluster> {
    const etcd = options.etcd ? undefined : await startOwnEtcd(options.tempDir);
    const cluster = new DevCluster(options.etcd ?? [etcd!.hostPort], etcd, options);
    try {
      await cluster.startMaster();
      for (let i = 0; i < options.workers; i++) await cluster.addWorker();
      return cluster;
    } catch (error) {
      await cluster.stop();
      throw error;
    }
  }

  /** Pid of the etcd this cluster started (none when it uses an existing one). */
  get etcdPid(): number | undefined {
    return this.etcd?.process?.pid;
  }
  get master(): DevNode | undefined {
    return this.nodes.find((node) => node.role === "master");
  }
  get liveWorkers(): DevNode[] {
    return this.nodes.filter((node) => node.role === "worker" && node.running);
  }

  async addWorker(): Promise<DevNode> {
    const name = `worker-${++this.workerCount}`;
    return this.spawnNode(name, "worker", ["--handler", EXAMPLE_HANDLER, ...WORKER_TIMINGS]);
  }

  /** Stops every node (gracefully, then by force), then etcd; resolves with how each node ended. */
  stop(): Promise<NodeExit[]> {
    this.stopping ??= (async () => {
      // The master first: workers leaving one by one would otherwise set off needless rebalances.
      const masterExit = await this.master?.stop();
      const workerExits = await Promise.all(
        this.nodes.filter((node) => node.role === "worker").map((node) => node.stop()),
      );
      const exits = masterExit ? [masterExit, ...workerExits] : workerExits;
      await this.etcd?.kill();
      return exits;
    })();
    return this.stopping;
  }

  private async startMaster(): Promise<DevNode> {
    const token = this.options.adminToken;
    const args = ["--generator", EXAMPLE_GENERATOR, ...MASTER_TIMINGS, ...(token ? ["--http-admin"] : [])];
    return this.spawnNode("master-1", "master", args, token ? { ESCHEDULER_ADMIN_TOKEN: token } : {});
  }

  private async spawnNode(
    name: string,
    role: "master" | "worker",
    args: string[],
    extraEnv: NodeJS.ProcessEnv = {},
  ): Promise<DevNode> {
    const http = `127.0.0.1:${await freePort()}`;
    const shared = [
      "--etcd",
      this.endpoints.join(","),
      "--root",
      this.options.root,
      "--name",
      name,
      "--http",
      http,
      "--log-level",
      this.options.logLevel,
      // The first workers gather in the barrier; later ones (added with "+") join without a cap.
      "--workers",
      String(this.options.workers),
      ...(role === "worker" ? ["--max-workers", "0"] : []),
      ...DEV_TIMINGS,
    ];
    const env = { ...process.env, ESCHEDULER_EXAMPLE_TASKS: String(this.options.tasks), ...extraEnv };
    const node = new DevNode(
      name,
      role,
      `http://${http}`,
      join(this.options.tempDir, `${name}.log`),
      [...args, ...shared],
      env,
    );
    this.nodes.push(node);
    return node;
  }
}

async function startOwnEtcd(tempDir: string): Promise<EtcdMember> {
  try {
    return await startEtcd({ tempDir, detached: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      throw new EschedulerError(
        "ERR_CONFIG",
        "etcd is not installed: install etcd-server (apt-get install etcd-server), set ETCD_BINARY, or pass --etcd host:port",
      );
    }
    throw error;
  }
}
