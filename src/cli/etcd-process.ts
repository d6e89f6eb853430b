/** Spawning throw-away etcd members: used by `escheduler dev` and by the tests. */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * Ports handed out below the kernel's ephemeral range (32768 and up on Linux): an outgoing connection never
 * takes one of them between the moment it is chosen and the moment a member listens on it — or listens on
 * it again after a restart (a port from the ephemeral range was taken meanwhile: "bind: address already in use").
 */
const LOW_PORT = 20_000;
const HIGH_PORT = 32_767;
const handedOut = new Set<number>();

/** A free loopback TCP port, below the ephemeral range, not handed out before by this process. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = LOW_PORT + Math.floor(Math.random() * (HIGH_PORT - LOW_PORT + 1));
    if (handedOut.has(port) || !(await tryPort(port))) continue;
    handedOut.add(port);
    return port;
  }
  return tryPort(0);
}

/** `port` if it can be bound on loopback now (released before returning), else 0; given 0, the port the kernel picks. */
function tryPort(port: number): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once("error", () => resolve(0));
    server.listen(port, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

export interface EtcdMemberOptions {
  name?: string;
  /** Extra etcd flags (e.g. TLS or auth-related). */
  args?: string[];
  /** Scheme of the client URL (https when TLS flags are given). */
  clientScheme?: "http" | "https";
  /** How to probe health; defaults to an HTTP GET of /health on the client URL. */
  healthCheck?: (member: EtcdMember) => Promise<boolean>;
  /** Parent folder of the temporary data dir (default: the OS temp folder). */
  tempDir?: string;
  /** Run in its own process group, so a signal to the parent's group does not reach it. */
  detached?: boolean;
}

interface MemberSpec {
  name: string;
  clientPort: number;
  peerPort: number;
  /** The port the other members dial to reach this one (a proxy in front of `peerPort`); default `peerPort`. */
  advertisedPeerPort?: number;
}

/**
 * One etcd member started from the `etcd` binary (Debian etcd-server) with fast heartbeat and election settings,
 * so 1–2 s leases work. `stop()` + `start()` restarts the same member on the same data.
 */
export class EtcdMember {
  readonly dataDir: string;
  process?: ChildProcess;
  private output = "";

  constructor(
    readonly spec: MemberSpec,
    private readonly cluster: MemberSpec[],
    private readonly options: EtcdMemberOptions = {},
    private readonly clusterToken = `escheduler-test-${process.pid}-${spec.clientPort}`,
  ) {
    this.dataDir = mkdtempSync(join(options.tempDir ?? tmpdir(), `escheduler-etcd-${spec.name}-`));
  }

  get endpoint(): string {
    return `${this.options.clientScheme ?? "http"}://127.0.0.1:${this.spec.clientPort}`;
  }
  get hostPort(): string {
    return `127.0.0.1:${this.spec.clientPort}`;
  }
  get running(): boolean {
    return this.process !== undefined && this.process.exitCode === null && this.process.signalCode === null;
  }

  async start(timeoutMs = 20_000): Promise<void> {
    if (this.running) return;
    const peerUrl = (m: MemberSpec) => `http://127.0.0.1:${m.advertisedPeerPort ?? m.peerPort}`;
    const initialCluster = this.cluster.map((m) => `${m.name}=${peerUrl(m)}`).join(",");
    const args = [
      "--name",
      this.spec.name,
      "--data-dir",
      this.dataDir,
      "--listen-client-urls",
      this.endpoint,
      "--advertise-client-urls",
      this.endpoint,
      "--listen-peer-urls",
      `http://127.0.0.1:${this.spec.peerPort}`,
      "--initial-advertise-peer-urls",
      peerUrl(this.spec),
      "--initial-cluster",
      initialCluster,
      "--initial-cluster-token",
      this.clusterToken,
      "--initial-cluster-state",
      "new",
      "--heartbeat-interval",
      "10",
      "--election-timeout",
      "100",
      "--log-level",
      "error",
      ...(this.options.args ?? []),
    ];
    this.output = "";
    const child = spawn(process.env.ETCD_BINARY ?? "etcd", args, {
      stdio: ["ignore", "pipe", "pipe"],
      detached: this.options.detached ?? false,
    });
    child.stdout?.on("data", (chunk) => this.capture(chunk));
    child.stderr?.on("data", (chunk) => this.capture(chunk));
    this.process = child;
    const spawnError = new Promise<never>((_, reject) => child.once("error", reject));
    await Promise.race([this.waitHealthy(timeoutMs), spawnError]);
  }

  /** Graceful stop (SIGTERM), waiting for the process to exit. */
  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const child = this.process;
    if (!child || !this.running) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill(signal);
    await exited;
  }

  kill(): Promise<void> {
    return this.stop("SIGKILL");
  }

  /** Stops and removes the data dir. */
  async destroy(): Promise<void> {
    await this.kill();
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  async healthy(): Promise<boolean> {
    if (this.options.healthCheck) return this.options.healthCheck(this);
    try {
      const response = await fetch(`${this.endpoint}/health`, { signal: AbortSignal.timeout(1_000) });
      const body = (await response.json()) as { health?: string };
      return body.health === "true";
    } catch {
      return false;
    }
  }

  private async waitHealthy(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.running) throw new Error(`etcd ${this.spec.name} exited: ${this.output.slice(-2000)}`);
      if (await this.healthy()) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`etcd ${this.spec.name} not healthy after ${timeoutMs}ms: ${this.output.slice(-2000)}`);
  }

  private capture(chunk: Buffer): void {
    this.output = (this.output + chunk.toString()).slice(-20_000);
  }
}

async function memberSpecs(count: number): Promise<MemberSpec[]> {
  const specs: MemberSpec[] = [];
  for (let i = 0; i < count; i++) {
    specs.push({ name: `m${i}`, clientPort: await freePort(), peerPort: await freePort() });
  }
  return specs;
}

/** Starts a throw-away single-member etcd on free loopback ports with a temporary data dir. */
export async function startEtcd(options: EtcdMemberOptions = {}): Promise<EtcdMember> {
  const [spec] = await memberSpecs(1);
  const member = new EtcdMember(spec, [spec], options);
  try {
    await member.start();
  } catch (error) {
    // Neither a half-started process nor its data dir may outlive the failure.
    await member.destroy();
    throw error;
  }
  return member;
}

export interface EtcdClusterOptions {
  /** Puts something (a test's proxy) in front of a member's peer port; resolves with the port the others dial. */
  routePeer?: (member: { name: string; peerPort: number }) => Promise<number>;
}

/** A started etcd cluster of `size` members. */
export interface EtcdCluster {
  members: EtcdMember[];
  /** Comma-separated host:port of every member (the `--etcd` flag's form). */
  endpoints: string[];
  destroy(): Promise<void>;
}

export async function startEtcdCluster(size = 3, options: EtcdClusterOptions = {}): Promise<EtcdCluster> {
  const specs = await memberSpecs(size);
  if (options.routePeer) for (const spec of specs) spec.advertisedPeerPort = await options.routePeer(spec);
  // One token for all members: a token per member makes each bootstrap its own cluster (ID mismatch).
  const token = `escheduler-test-${process.pid}-${specs[0].clientPort}`;
  const members = specs.map((spec) => new EtcdMember(spec, specs, {}, token));
  await Promise.all(members.map((m) => m.start()));
  return {
    members,
    endpoints: members.map((m) => m.hostPort),
    destroy: async () => {
      await Promise.all(members.map((m) => m.destroy()));
    },
  };
}
