/**
 * What a benchmark reads about the processes it started and about etcd, from /proc and etcd's
 * /metrics: CPU time per process, peak memory, and gRPC calls handled per method.
 */
import { readFileSync } from "node:fs";

/** User + system CPU time of a process, in ms (0 when it is gone or unknown). */
export function cpuMs(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    // utime and stime are fields 14 and 15 of /proc/<pid>/stat, in clock ticks (100 a second).
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return 0;
  }
}

/** Peak resident set size (VmHWM) of a process, in MB. */
export function peakMB(pid: number | undefined): number {
  if (!pid) return 0;
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return match ? Number(match[1]) / 1024 : 0;
}

/**
 * etcd's gRPC messages received so far, by method (`Txn`, `Range`, `LeaseKeepAlive`, …): one per
 * unary call, one per request on a stream (each keep-alive, each watch created). `metric` may name
 * `grpc_server_handled_total` instead (calls finished, all codes; a stream counts when it ends).
 */
export async function etcdCalls(
  endpoint: string,
  metric = "grpc_server_msg_received_total",
): Promise<Map<string, number>> {
  const text = await (await fetch(`${endpoint}/metrics`)).text();
  const calls = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${metric}{`)) continue;
    const method = /grpc_method="([^"]+)"/.exec(line)?.[1];
    if (method) calls.set(method, (calls.get(method) ?? 0) + Number(line.slice(line.lastIndexOf(" ") + 1)));
  }
  return calls;
}

/** etcd's calls that ended with another code than OK so far, by "method code" (e.g. "Txn DeadlineExceeded"). */
export async function etcdFailures(endpoint: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${endpoint}/metrics`)).text();
  const failures = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line.startsWith("grpc_server_handled_total{")) continue;
    const code = /grpc_code="([^"]+)"/.exec(line)?.[1];
    const method = /grpc_method="([^"]+)"/.exec(line)?.[1];
    if (!code || !method || code === "OK") continue;
    const key = `${method} ${code}`;
    failures.set(key, (failures.get(key) ?? 0) + Number(line.slice(line.lastIndexOf(" ") + 1)));
  }
  return failures;
}

/**
 * etcd's keys written (puts and deletions, counted in transactions too), ranges read (compares not
 * counted) and bytes sent to its gRPC clients (every answer and watch event), so far.
 */
export async function etcdKeyOps(
  endpoint: string,
): Promise<{ puts: number; deletes: number; ranges: number; sentBytes: number }> {
  const text = await (await fetch(`${endpoint}/metrics`)).text();
  const value = (name: string) => {
    const line = text.split("\n").find((l) => l.startsWith(`${name} `));
    return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : 0;
  };
  return {
    puts: value("etcd_mvcc_put_total"),
    deletes: value("etcd_mvcc_delete_total"),
    ranges: value("etcd_mvcc_range_total"),
    sentBytes: value("etcd_network_client_grpc_sent_bytes_total"),
  };
}

/** etcd's count of handled Txn calls (all codes). */
export async function txnCalls(endpoint: string): Promise<number> {
  return (await etcdCalls(endpoint, "grpc_server_handled_total")).get("Txn") ?? 0;
}

/** The calls made between two readings of `etcdCalls`, as "Method n" joined by commas, most first. */
export function callsBetween(before: Map<string, number>, after: Map<string, number>): string {
  return [...after]
    .map(([method, count]) => [method, count - (before.get(method) ?? 0)] as const)
    .filter(([, count]) => count > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([method, count]) => `${method} ${count}`)
    .join(", ");
}

/** etcd's counters at one moment: requests and failures by method, key operations and bytes sent. */
export interface EtcdReading {
  calls: Map<string, number>;
  failures: Map<string, number>;
  keyOps: Awaited<ReturnType<typeof etcdKeyOps>>;
}

export async function readEtcd(endpoint: string): Promise<EtcdReading> {
  const [calls, failures, keyOps] = await Promise.all([
    etcdCalls(endpoint),
    etcdFailures(endpoint),
    etcdKeyOps(endpoint),
  ]);
  return { calls, failures, keyOps };
}

/** What etcd did between two readings: requests by method (and their total), failures, key operations. */
export function etcdBetween(before: EtcdReading, after: EtcdReading) {
  const requests = [...after.calls].reduce(
    (sum, [method, n]) => sum + n - (before.calls.get(method) ?? 0),
    0,
  );
  const key = (name: keyof EtcdReading["keyOps"]) => after.keyOps[name] - before.keyOps[name];
  return {
    calls: callsBetween(before.calls, after.calls),
    requests,
    failures: callsBetween(before.failures, after.failures) || "none",
    puts: key("puts"),
    deletes: key("deletes"),
    ranges: key("ranges"),
    sentMB: key("sentBytes") / 1e6,
  };
}
