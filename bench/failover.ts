/**
 * Failover benchmark with real `bin/escheduler.js` processes (the built dist/): how long a crashed
 * worker's tasks take to run elsewhere (SIGKILL) and a leaving worker's (SIGTERM), each beside the
 * lease TTL that a crash must wait out; and the peak memory (VmHWM) of the master and of a worker
 * carrying 10,000 tasks, beside an idle standby master and an idle worker. Alone: `npx tsx bench/failover.ts`.
 */
import { pathToFileURL } from "node:url";
import type { Task } from "../src/node/index.js";
import { build, Fleet } from "./fleet.js";
import { type BenchRow, printReport } from "./report.js";

const TTL_MS = 2_000;
const REBALANCE_WAIT_MS = 200;
const REBALANCE_WAIT = ["--rebalance-wait", `${REBALANCE_WAIT_MS}ms`];
const FAILOVER_TASKS = 300;
const MEMORY_TASKS = 10_000;

export async function benchFailover(endpoints: string[]): Promise<BenchRow[]> {
  build();
  const failover = await measureFailover(endpoints);
  const memory = await measureMemory(endpoints);
  const ttl = { name: `lease TTL (--ttl ${TTL_MS / 1000}s)`, value: TTL_MS };
  return [
    {
      name: `crash failover: worker SIGKILL → its ${failover.crashTasks} tasks run elsewhere (--rebalance-wait ${REBALANCE_WAIT_MS}ms)`,
      value: failover.crashMs,
      unit: "ms",
      baseline: ttl,
      target: "< TTL + rebalance-wait + 1 s",
      met: failover.crashMs < TTL_MS + REBALANCE_WAIT_MS + 1_000,
    },
    {
      name: `graceful leave: worker SIGTERM → its ${failover.leaveTasks} tasks run elsewhere`,
      value: failover.leaveMs,
      unit: "ms",
      baseline: ttl,
      target: "< TTL",
      met: failover.leaveMs < TTL_MS,
    },
    {
      name: `master peak memory (VmHWM), leading ${MEMORY_TASKS} tasks × 3 workers`,
      value: memory.leaderMB,
      unit: "MB",
      baseline: { name: "standby master", value: memory.standbyMB },
      target: "< 300 MB",
      met: memory.leaderMB < 300,
    },
    {
      name: `worker peak memory (VmHWM), running ${Math.round(MEMORY_TASKS / 3)} tasks`,
      value: memory.workerMB,
      unit: "MB",
      baseline: { name: "idle worker", value: memory.idleWorkerMB },
      target: "< 300 MB",
      met: memory.workerMB < 300,
    },
  ];
}

/** One worker killed, then (after a replacement joined) one worker terminated; each timed until its tasks run elsewhere. */
async function measureFailover(endpoints: string[]) {
  const fleet = new Fleet(endpoints, tasks(FAILOVER_TASKS), { ttlMs: TTL_MS });
  try {
    fleet.master("m1", REBALANCE_WAIT);
    for (const name of ["w1", "w2", "w3"]) fleet.worker(name);
    await fleet.converged();

    const crashed = await fleet.assignedTo("w1");
    const killedAt = fleet.signal("w1", "SIGKILL");
    await fleet.converged();
    const crashMs = fleet.movedWithin(crashed, killedAt, "w1");

    fleet.worker("w4");
    await fleet.converged();
    const leaving = await fleet.assignedTo("w2");
    const terminatedAt = fleet.signal("w2", "SIGTERM");
    await fleet.converged();
    const leaveMs = fleet.movedWithin(leaving, terminatedAt, "w2");
    return { crashMs, crashTasks: crashed.length, leaveMs, leaveTasks: leaving.length };
  } finally {
    await fleet.close();
  }
}

/** A leader, a standby and 3 workers over MEMORY_TASKS tasks, plus an idle worker on a root of its own. */
async function measureMemory(endpoints: string[]) {
  const fleet = new Fleet(endpoints, tasks(MEMORY_TASKS), { ttlMs: TTL_MS });
  const idle = new Fleet(endpoints, [], { ttlMs: TTL_MS });
  try {
    fleet.master("m1", REBALANCE_WAIT);
    await fleet.leading("m1");
    fleet.master("m2", REBALANCE_WAIT);
    for (const name of ["w1", "w2", "w3"]) fleet.worker(name);
    idle.worker("idle");
    await fleet.converged(120_000);
    await idle.registered("idle");
    const workers = ["w1", "w2", "w3"].map((name) => fleet.peakMB(name));
    return {
      leaderMB: fleet.peakMB("m1"),
      standbyMB: fleet.peakMB("m2"),
      workerMB: Math.max(...workers),
      idleWorkerMB: idle.peakMB("idle"),
    };
  } finally {
    await Promise.all([fleet.close(), idle.close()]);
  }
}

function tasks(count: number): Task[] {
  return Array.from({ length: count }, (_, i) => ({ id: `task-${i}`, group: `g${i % 3}` }));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { startEtcd } = await import("../src/cli/etcd-process.js");
  const etcd = await startEtcd();
  try {
    printReport("escheduler failover benchmark", await benchFailover([etcd.hostPort]));
  } finally {
    await etcd.destroy();
  }
}
