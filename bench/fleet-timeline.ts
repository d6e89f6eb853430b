import type { Etcd3 } from "etcd3";
import type { Host } from "./fleet-hosts.js";
import { cpuMs, txnCalls } from "./process-stats.js";

/**
 * The join's timeline: the joiners' registered and running counts, all running, and the CPU of the
 * master, etcd, the older worker processes (together) and the joiners' process.
 */
export function joinTimeline(
  joiner: Host,
  older: Host[],
  running: () => number,
  masterPid?: number,
  etcdPid?: number,
) {
  const olderCpu = () => older.reduce((total, host) => total + cpuMs(host.child.pid), 0);
  const at = {
    master: cpuMs(masterPid),
    etcd: cpuMs(etcdPid),
    older: olderCpu(),
    joiner: cpuMs(joiner.child.pid),
  };
  console.error(`fleet: join began at ${process.hrtime.bigint() / 1000n} µs (monotonic)`);
  return new Timeline(() => ({
    joinersRegistered: joiner.latest.registered,
    joinersAssigned: joiner.latest.assigned,
    joinersRunning: joiner.latest.running,
    running: running(),
    masterCpuMs: cpuMs(masterPid) - at.master,
    etcdCpuMs: cpuMs(etcdPid) - at.etcd,
    olderHostsCpuMs: olderCpu() - at.older,
    joinerHostCpuMs: cpuMs(joiner.child.pid) - at.joiner,
  }));
}

/**
 * The first start's or the crash's timeline: the live workers' registrations (deletions seen by the
 * bench's own watch of `workersPrefix`: when etcd expired the killed workers' leases), their assigned
 * and running counts, etcd's Txn calls (the master's writes and the workers' claims and statuses), and
 * the CPU of the master, etcd and the live worker processes (together).
 */
export async function fleetTimeline(
  what: string,
  hosts: Host[],
  pids: { master?: number; etcd?: number },
  etcd: { client: Etcd3; workersPrefix: string; endpoint: string },
): Promise<Timeline> {
  const hostsCpu = () => hosts.reduce((total, host) => total + cpuMs(host.child.pid), 0);
  const sum = (field: "registered" | "assigned" | "running") =>
    hosts.reduce((total, host) => total + host.latest[field], 0);
  let gone = 0;
  const watcher = await etcd.client.watch().prefix(etcd.workersPrefix).create();
  watcher.on("delete", () => gone++);
  const txnsAt = await txnCalls(etcd.endpoint);
  let txns = 0;
  const reading = setInterval(() => {
    txnCalls(etcd.endpoint).then(
      (calls) => (txns = calls - txnsAt),
      () => undefined,
    );
  }, 250);
  const at = { master: cpuMs(pids.master), etcd: cpuMs(pids.etcd), hosts: hostsCpu() };
  console.error(`fleet: ${what} began at ${process.hrtime.bigint() / 1000n} µs (monotonic)`);
  const timeline = new Timeline(() => ({
    registrationsGone: gone,
    registered: sum("registered"),
    assigned: sum("assigned"),
    running: sum("running"),
    "Txn+": txns,
    masterCpuMs: cpuMs(pids.master) - at.master,
    etcdCpuMs: cpuMs(pids.etcd) - at.etcd,
    hostsCpuMs: hostsCpu() - at.hosts,
  }));
  timeline.onPrint = () => {
    clearInterval(reading);
    void watcher.cancel();
  };
  return timeline;
}

/**
 * A phase's timeline for the fleet benchmark (FLEET_TIMELINE=1): every 500 ms one sample of the
 * figures given (e.g. the joiners' registered and running counts, the master's and etcd's CPU; a name
 * ending in "Ms" or "+" is shown by its change since the last sample), and the master's log lines (run it at `--log-level info`: FLEET_MASTER_LOG_LEVEL), each at its time
 * since the phase began. Printed to stderr, so the report's rows stay as they are.
 */
export class Timeline {
  private readonly startedAt = Date.now();
  private readonly lines: string[] = [];
  private readonly timer: NodeJS.Timeout;
  private last: Record<string, number> = {};
  /** Runs once the timeline is printed (e.g. closes a watch its samples read). */
  onPrint?: () => void;

  constructor(private readonly sample: () => Record<string, number>) {
    this.last = sample();
    this.timer = setInterval(() => this.take(), 500);
  }

  /** A master log line (JSON with `time` and `msg`); others are ignored. */
  master(line: string): void {
    try {
      const entry = JSON.parse(line) as Record<string, unknown>;
      const { time, msg } = entry;
      if (typeof time !== "number" || typeof msg !== "string") return;
      for (const field of ["time", "msg", "level", "pid", "hostname", "name", "role"]) delete entry[field];
      this.lines.push(`${at(time - this.startedAt)} master: ${msg} ${JSON.stringify(entry)}`);
    } catch {
      // not a log line
    }
  }

  /** Stops sampling and prints the timeline. */
  print(title: string): void {
    clearInterval(this.timer);
    this.onPrint?.();
    this.take();
    console.error(`fleet timeline: ${title}\n${this.lines.join("\n")}`);
  }

  private take(): void {
    const now = this.sample();
    const deltas = Object.entries(now).map(([name, value]) => {
      const change = value - (this.last[name] ?? 0);
      if (name.endsWith("Ms")) return `${name.slice(0, -2)} +${change.toFixed(0)} ms`;
      // A name ending in "+" is a count shown by its change.
      return name.endsWith("+") ? `${name.slice(0, -1)} +${change}` : `${name} ${value}`;
    });
    this.last = now;
    this.lines.push(`${at(Date.now() - this.startedAt)} ${deltas.join(", ")}`);
  }
}

function at(ms: number): string {
  return `+${(ms / 1000).toFixed(2).padStart(6)} s`;
}
