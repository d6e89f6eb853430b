/** The fleet benchmark's rows: a phase's time and etcd CPU, and a phase's cost (etcd requests, CPU by process). */
import { cpuMs, etcdBetween, type EtcdReading, readEtcd } from "./process-stats.js";
import type { BenchRow } from "./report.js";

/** A phase's wall time and etcd's CPU over it (as % of one core), folded into the row's name. */
export function phase(startedAt: number, cpuBefore: number, cpuAfter: number) {
  const ms = performance.now() - startedAt;
  return { ms, etcdCpuPercent: (100 * (cpuAfter - cpuBefore)) / ms };
}

export function row(
  name: string,
  measured: ReturnType<typeof phase>,
  limitMs: number,
  target: string,
): BenchRow {
  return {
    name: `${name} (etcd CPU ${measured.etcdCpuPercent.toFixed(0)} %)`,
    value: measured.ms,
    unit: "ms",
    target,
    met: measured.ms <= limitMs,
  };
}

/** A phase's etcd requests (in all and per worker), bytes etcd sent, and CPU of the worker processes and etcd. */
export function phaseCost(
  name: string,
  measured: { workers: number; etcd: ReturnType<typeof etcdBetween>; hostsCpu: number[]; etcdCpuMs: number },
): BenchRow[] {
  const { workers, etcd, hostsCpu, etcdCpuMs } = measured;
  return [
    {
      name: `${name}, etcd requests per worker (${etcd.calls}; failed: ${etcd.failures}; ranges ${etcd.ranges}, puts ${etcd.puts})`,
      value: etcd.requests / workers,
      unit: "requests",
    },
    { name: `${name}, bytes etcd sent to its clients`, value: etcd.sentMB, unit: "MB" },
    {
      name: `${name}, CPU of the worker processes (each: ${hostsCpu.join(", ")}) / etcd ${etcdCpuMs.toFixed(0)} ms`,
      value: hostsCpu.reduce((a, b) => a + b, 0),
      unit: "ms",
    },
  ];
}

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

/**
 * Where a phase's work went (the same processes read before and after): the CPU of etcd, of the
 * master and of each worker process — on a real fleet each worker has its own machine, so only etcd's
 * and the master's would add up — and etcd's requests and key operations.
 */
export async function phaseSplit(
  name: string,
  endpoint: string,
  pids: CostPids,
  before: CostReading,
): Promise<BenchRow> {
  const after = await readCost(endpoint, pids);
  const etcd = etcdBetween(before.etcd, after.etcd);
  const [etcdMs, masterMs, ...hostsMs] = after.cpuMs.map((ms, i) => ms - (before.cpuMs[i] ?? 0));
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
