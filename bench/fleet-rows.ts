/** The fleet benchmark's rows: a phase's time and etcd CPU, and a phase's cost (etcd requests, CPU by process). */
import { cpuMs, etcdBetween, type EtcdReading, readEtcd } from "./process-stats.js";
import type { BenchRow } from "./report.js";

/** etcd's requests so far, and the CPU etcd, the master and each worker process used so far. */
export interface CostReading {
  etcd: EtcdReading;
  cpuMs: number[];
}

/** The processes a phase's cost is split over: etcd, the master (absent before it starts), the worker processes. */
export interface CostPids {
  etcd: number | undefined;
  master: number | undefined;
  hosts: (number | undefined)[];
}

export async function readCost(endpoint: string, pids: CostPids): Promise<CostReading> {
  return { etcd: await readEtcd(endpoint), cpuMs: [pids.etcd, pids.master, ...pids.hosts].map(cpuMs) };
}

/** A phase: its wall time, etcd's requests and key operations, and the CPU of each process over it. */
export interface PhaseCost {
  ms: number;
  etcd: ReturnType<typeof etcdBetween>;
  etcdMs: number;
  masterMs: number;
  hostsMs: number[];
}

/**
 * Ends a phase begun at `startedAt` with `before` read: its time is taken first, then the same
 * processes are read again.
 */
export async function phaseSince(
  startedAt: number,
  endpoint: string,
  pids: CostPids,
  before: CostReading,
): Promise<PhaseCost> {
  const ms = performance.now() - startedAt;
  const after = await readCost(endpoint, pids);
  const [etcdMs, masterMs, ...hostsMs] = after.cpuMs.map((cpu, i) => cpu - (before.cpuMs[i] ?? 0));
  return { ms, etcd: etcdBetween(before.etcd, after.etcd), etcdMs, masterMs, hostsMs };
}

/** A phase's time against its target, with etcd's CPU over it (as % of one core) in the row's name. */
export function row(name: string, phase: PhaseCost, limitMs: number, target: string): BenchRow {
  return {
    name: `${name} (etcd CPU ${((100 * phase.etcdMs) / phase.ms).toFixed(0)} %)`,
    value: phase.ms,
    unit: "ms",
    target,
    met: phase.ms <= limitMs,
  };
}

/** etcd's requests per worker and the bytes etcd sent to its clients over a phase (the registration's). */
export function perWorker(name: string, workers: number, phase: PhaseCost): BenchRow[] {
  const { etcd } = phase;
  return [
    {
      name: `${name}, etcd requests per worker (by method in its CPU row)`,
      value: etcd.requests / workers,
      unit: "requests",
    },
    { name: `${name}, bytes etcd sent to its clients`, value: etcd.sentMB, unit: "MB" },
  ];
}

/**
 * Where a phase's work went: the CPU of etcd, of the master and of each worker process — on a real
 * fleet each worker has its own machine, so only etcd's and the master's would add up — and etcd's
 * requests and key operations.
 */
export function split(name: string, phase: PhaseCost): BenchRow {
  const { etcd, etcdMs, masterMs, hostsMs } = phase;
  return {
    name: `${name}, CPU of etcd ${etcdMs}, the master ${masterMs}, the worker processes ${hostsMs.join(" + ")} ms; etcd requests (${etcd.calls}; failed: ${etcd.failures}; keys: puts ${etcd.puts}, deletions ${etcd.deletes}, ranges ${etcd.ranges})`,
    value: etcdMs + masterMs + hostsMs.reduce((a, b) => a + b, 0),
    unit: "ms CPU",
  };
}

/**
 * The time of a fixed piece of CPU work like the fleet's own (JSON of 100,000 small records written
 * and read back, the fastest of three), as a row: the machine's speed when the row was taken. The
 * shared VM this bench runs on varies by up to a third between runs (etcd's CPU for the same requests
 * did), so a phase's figure is read beside it.
 */
export function machineSpeed(when: string): BenchRow {
  const records = Array.from({ length: 100_000 }, (_, i) => ({ id: `task-${i}`, group: `g${i % 20}`, n: i }));
  const times = [0, 1, 2].map(() => {
    const started = performance.now();
    const copy = JSON.parse(JSON.stringify(records)) as unknown[];
    if (copy.length !== records.length) throw new Error("machine speed: the JSON round trip lost records");
    return performance.now() - started;
  });
  return {
    name: `machine speed ${when}: JSON of 100,000 records (lower is faster)`,
    value: Math.min(...times),
    unit: "ms",
  };
}
