import { afterEach, describe, expect, it } from "vitest";
import type { Task } from "../../../src/balancer/index.js";
import { type PlanRecord, planRecordSchema } from "../../../src/node/index.js";
import { runCli } from "../../helpers/cli.js";
import { Cluster, now } from "../../helpers/cluster.js";

const TTL_MS = 2_000;
const REBALANCE_WAIT_MS = 200;
const ZONES = ["eu-1a", "eu-1b", "eu-1c"];
/** Six workers, two per zone: w1 and w4 in eu-1a, w2 and w5 in eu-1b, w3 and w6 in eu-1c; w7 and w8 replace eu-1c's. */
const WORKERS = ["w1", "w2", "w3", "w4", "w5", "w6"];
const zoneOf = (worker: string) =>
  worker === "w7" || worker === "w8" ? "eu-1c" : ZONES[(Number(worker.slice(1)) - 1) % 3];
const LOST = ["w3", "w6"];
const RETURNING = ["w7", "w8"];

/** A generator using all three constraint kinds, plus tasks without any. */
const TASKS: Task[] = [
  ...Array.from({ length: 12 }, (_, i) => ({
    id: `feed-${i}`,
    group: "feeds",
    spread: { label: "zone", maxSkew: 1 },
  })),
  ...ZONES.flatMap((zone) =>
    [0, 1].map((i) => ({ id: `local-${zone}-${i}`, group: "local", selector: { zone } })),
  ),
  ...[0, 1, 2].map((i) => ({ id: `db-${i}`, group: "db", antiKey: "db", spread: { label: "zone" } })),
  ...Array.from({ length: 6 }, (_, i) => ({ id: `plain-${i}`, group: "plain" })),
];

let cluster: Cluster | undefined;
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

function perZone(assignment: Map<string, string[]>, prefix: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const [worker, ids] of assignment)
    for (const id of ids)
      if (id.startsWith(prefix)) counts[zoneOf(worker)] = (counts[zoneOf(worker)] ?? 0) + 1;
  return counts;
}

/** Tasks on a worker whose zone their selector (or the replicas' one-per-zone rule) rejects. */
function misplaced(assignment: Map<string, string[]>): string[] {
  const wrong: string[] = [];
  for (const [worker, ids] of assignment)
    for (const id of ids)
      if (id.startsWith("local-") && !id.startsWith(`local-${zoneOf(worker)}-`)) wrong.push(id);
  const dbZones = [...assignment].flatMap(([worker, ids]) =>
    ids.filter((id) => id.startsWith("db-")).map(() => zoneOf(worker)),
  );
  if (new Set(dbZones).size !== dbZones.length) wrong.push(`db replicas share a zone: ${dbZones}`);
  return wrong;
}

const ownerMap = (assignment: Map<string, string[]>) =>
  new Map([...assignment].flatMap(([worker, ids]) => ids.map((id) => [id, worker] as const)));

describe("placement constraints with real processes: a zone lost and back (1 master, 6 workers in 3 zones)", () => {
  it("moves the lost zone's tasks within TTL + rebalance-wait + 1 s, keeps selectors and spread, says why the rest wait, and restores the spread with the fewest moves", async () => {
    cluster = await Cluster.create({
      ttl: `${TTL_MS}ms`,
      rebalanceWait: `${REBALANCE_WAIT_MS}ms`,
      tasks: TASKS,
    });
    await cluster.startMaster("m1");
    for (const name of WORKERS) cluster.startWorker(name, { args: ["--label", `zone=${zoneOf(name)}`] });
    const before = await cluster.waitConverged({ timeoutMs: 30_000 });
    expect(perZone(before, "feed-")).toEqual({ "eu-1a": 4, "eu-1b": 4, "eu-1c": 4 });
    expect(perZone(before, "db-")).toEqual({ "eu-1a": 1, "eu-1b": 1, "eu-1c": 1 });
    expect(misplaced(before)).toEqual([]);

    // The zone goes: every worker of eu-1c is SIGKILLed.
    const lostTasks = LOST.flatMap((worker) => before.get(worker) ?? []);
    const pids = new Map(LOST.map((worker) => [worker, cluster!.node(worker).pid]));
    const killedAt = now();
    await Promise.all(LOST.map((worker) => cluster!.kill(worker)));
    const bound = (id: string) =>
      id.startsWith("local-eu-1c-") || (id.startsWith("db-") && lostTasks.includes(id));
    const runnable = TASKS.filter((task) => !bound(task.id));
    const during = await cluster.waitConverged({ tasks: runnable, timeoutMs: 30_000 });

    const moving = lostTasks.filter((id) => !bound(id));
    expect(moving.length).toBeGreaterThan(0);
    const slowest = Math.max(
      ...moving.map((id) => {
        const start = cluster!
          .events()
          .find(
            (e) =>
              e.event === "start" && e.task === id && e.t > killedAt && ![...pids.values()].includes(e.pid),
          );
        return (start?.t ?? Number.POSITIVE_INFINITY) - killedAt;
      }),
    );
    expect(slowest).toBeLessThan(TTL_MS + REBALANCE_WAIT_MS + 1_000);
    expect(misplaced(during)).toEqual([]);
    expect(perZone(during, "feed-")).toEqual({ "eu-1a": 6, "eu-1b": 6 });
    // Nothing of the zones left moved: only the lost zone's tasks changed worker.
    const beforeOwner = ownerMap(before);
    const moved = [...ownerMap(during)]
      .filter(([id, worker]) => beforeOwner.get(id) !== worker)
      .map(([id]) => id);
    expect(moved.sort()).toEqual([...moving].sort());

    // Why the rest wait: in the plan record, in `status --json`, and in the history.
    const planRecord = planRecordSchema.parse(
      JSON.parse((await cluster.client.get(cluster.keys.plan).string()) ?? "{}"),
    );
    const waiting = (record: Pick<PlanRecord, "unassignedTasks">) =>
      Object.fromEntries((record.unassignedTasks ?? []).map((t) => [t.id, `${t.kind}: ${t.text}`]));
    const expected = Object.fromEntries(
      TASKS.filter((task) => bound(task.id)).map((task) => [
        task.id,
        task.id.startsWith("db-")
          ? "antiKey: antiKey db: 3 tasks, 2 values of zone"
          : "selector: no worker matches zone=eu-1c",
      ]),
    );
    expect(waiting(planRecord)).toEqual(expected);
    expect(planRecord.unassignedReasons).toEqual({ selector: 2, antiKey: 1 });
    const status = await runCli([
      "status",
      "--json",
      "--etcd",
      cluster.endpoints.join(","),
      "--root",
      cluster.root,
    ]);
    const report = JSON.parse(status.stdout) as {
      plan: PlanRecord;
      workers: Array<{ name: string; labels?: object }>;
    };
    expect(waiting(report.plan)).toEqual(expected);
    expect(report.workers.find((w) => w.name === "w1")?.labels).toEqual({ zone: "eu-1a" });
    const text = await runCli(["status", "--etcd", cluster.endpoints.join(","), "--root", cluster.root]);
    expect(text.stdout).toContain("no worker matches zone=eu-1c");
    const history = await runCli([
      "history",
      "--limit",
      "1",
      "--etcd",
      cluster.endpoints.join(","),
      "--root",
      cluster.root,
    ]);
    expect(history.stdout).toMatch(/unassigned (selector 2, antiKey 1|antiKey 1, selector 2)/);

    // The zone comes back (new processes): the spread is restored by moving 4 feeds (2 from each zone), nothing else that ran moves.
    for (const name of RETURNING) cluster.startWorker(name, { args: ["--label", `zone=${zoneOf(name)}`] });
    const after = await cluster.waitConverged({ timeoutMs: 30_000 });
    expect(perZone(after, "feed-")).toEqual({ "eu-1a": 4, "eu-1b": 4, "eu-1c": 4 });
    expect(perZone(after, "db-")).toEqual({ "eu-1a": 1, "eu-1b": 1, "eu-1c": 1 });
    expect(misplaced(after)).toEqual([]);
    const duringOwner = ownerMap(during);
    const movedBack = [...ownerMap(after)].filter(
      ([id, worker]) => duringOwner.has(id) && duringOwner.get(id) !== worker,
    );
    expect(movedBack.filter(([id]) => id.startsWith("feed-"))).toHaveLength(4);
    expect(movedBack.filter(([id]) => id.startsWith("local-") || id.startsWith("db-"))).toEqual([]);
    expect(await cluster.invariantProblems()).toEqual([]);
  }, 120_000);
});
