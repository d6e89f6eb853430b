/** The fleet benchmark's rows: a phase's time and etcd CPU, and a phase's cost (etcd requests, CPU). */
import type { etcdBetween } from "./process-stats.js";
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
