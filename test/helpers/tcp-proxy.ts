import { createConnection, createServer, type Server, type Socket } from "node:net";
import { type EtcdCluster, startEtcdCluster } from "../../src/cli/etcd-process.js";

/**
 * A loopback TCP proxy in front of etcd that can black-hole traffic: while partitioned, connections
 * stay open but nothing passes in either direction (what a real network partition looks like).
 */
export class TcpProxy {
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  private partitioned = false;
  /** While set, data is queued (not dropped) and delivered in order by `release()`. */
  private held?: Array<() => void>;
  /** Which connections (by accept order) `hold()` delays. */
  private holding: (connection: number) => boolean = () => true;
  /** Connections accepted so far: the next one gets this index. */
  connections = 0;
  /** One-way delay added to everything forwarded, in either direction (order kept). */
  private latencyMs = 0;
  /** etcd peers (member ids in hex) whose connections through this proxy are black-holed. */
  private readonly cutOff = new Set<string>();
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {}

  get hostPort(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.server = createServer((client) => this.pipe(client));
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    const address = this.server.address();
    this.port = typeof address === "object" && address ? address.port : 0;
  }

  /** Stop forwarding; data is dropped, sockets stay open. */
  partition(): void {
    this.partitioned = true;
  }

  /**
   * Black-holes only the connections an etcd peer opened (in both directions): in front of a member's
   * peer port, the sender is the member named by the `X-Server-From` header of the connection's first
   * request (raft streams and pipelines both send it).
   */
  partitionFrom(memberIdHex: string): void {
    this.cutOff.add(memberIdHex.toLowerCase());
  }

  /**
   * Delay everything (or only the connections `which` picks, by accept order): data in either
   * direction waits, in order, until `release()`; connections stay up.
   */
  hold(which: (connection: number) => boolean = () => true): void {
    this.held ??= [];
    this.holding = which;
  }

  /** Delivers what `hold()` delayed and forwards at once again. */
  release(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const deliver of held) deliver();
  }

  /** Delays every chunk by `ms` in each direction (a round trip gains 2 × ms); 0 forwards at once again. */
  setLatency(ms: number): void {
    this.latencyMs = ms;
  }

  /** Forward again; connections that were black-holed are reset so clients reconnect cleanly. */
  heal(): void {
    this.partitioned = false;
    this.cutOff.clear();
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private pipe(client: Socket): void {
    const connection = this.connections++;
    const upstream = createConnection(this.target);
    this.sockets.add(client);
    this.sockets.add(upstream);
    let head = "";
    let sender: string | undefined;
    client.on("data", (chunk: Buffer) => {
      if (sender !== undefined || head.length > 8_192) return;
      head += chunk.toString("latin1");
      sender = /^x-server-from:\s*([0-9a-f]+)/im.exec(head)?.[1]?.toLowerCase();
    });
    const blackHoled = () => this.partitioned || (sender !== undefined && this.cutOff.has(sender));
    const forward = (from: Socket, to: Socket) => {
      const delayed = new DelayLine((chunk) => to.write(chunk));
      from.on("data", (chunk: Buffer) => {
        if (blackHoled()) return;
        if (this.held && this.holding(connection)) this.held.push(() => to.write(chunk));
        else if (this.latencyMs > 0 || delayed.busy) delayed.push(chunk, this.latencyMs);
        else to.write(chunk);
      });
      from.on("close", () => {
        this.sockets.delete(from);
        to.destroy();
      });
      from.on("error", () => to.destroy());
    };
    forward(client, upstream);
    forward(upstream, client);
  }
}

/** Delivers chunks after a delay, in the order they came (a later chunk never overtakes). */
class DelayLine {
  private readonly queue: Array<{ at: number; chunk: Buffer }> = [];
  private timer?: NodeJS.Timeout;

  constructor(private readonly deliver: (chunk: Buffer) => void) {}

  get busy(): boolean {
    return this.queue.length > 0;
  }

  push(chunk: Buffer, delayMs: number): void {
    const at = Math.max(Date.now() + delayMs, this.queue.at(-1)?.at ?? 0);
    this.queue.push({ at, chunk });
    this.timer ??= setTimeout(() => this.pump(), delayMs);
  }

  private pump(): void {
    this.timer = undefined;
    while (this.queue.length > 0 && (this.queue[0] as { at: number }).at <= Date.now())
      this.deliver((this.queue.shift() as { chunk: Buffer }).chunk);
    const next = this.queue[0];
    if (next) this.timer = setTimeout(() => this.pump(), Math.max(0, next.at - Date.now()));
  }
}

/** A `size`-member etcd cluster whose members reach each other only through one TcpProxy each (index = member). */
export async function startPeerProxiedEtcdCluster(
  size: number,
): Promise<{ etcd: EtcdCluster; peerProxies: TcpProxy[] }> {
  const peerProxies: TcpProxy[] = [];
  const etcd = await startEtcdCluster(size, {
    routePeer: async ({ peerPort }) => {
      const proxy = new TcpProxy({ host: "127.0.0.1", port: peerPort });
      await proxy.start();
      peerProxies.push(proxy);
      return proxy.port;
    },
  });
  return { etcd, peerProxies };
}
