import { describe, expect, it } from "vitest";
import type { HistoryEntry } from "../../../src/operator/index.js";
import { readStatusReport } from "../../../src/cli/status.js";
import type { StatusReport } from "../../../src/cli/status-view.js";
import type { Task } from "../../../src/node/index.js";
import { runCli } from "../../helpers/cli.js";
import { Cluster, now, unitTasks } from "../../helpers/cluster.js";
import { waitFor } from "../../helpers/context.js";
import { waitForMetrics } from "../../helpers/metrics.js";

/** The cluster helper's lease TTL: a killed worker's registration goes this long after the kill. */
const TTL_MS = 2_000;
/**
 * Generous slack over what a step needs on an idle machine (TTL, the 200 ms rebalance wait, a
 * schedule, a start): eight helpers share two cores, and only the upper bounds depend on that.
 */
const LOAD_SLACK_MS = 20_000;
/** Each scenario starts and restarts processes: minutes on a machine at load 40. */
const SCENARIO_TIMEOUT_MS = 240_000;

async function cluster(delay: string, tasks: Task[], workers: string[], masters = 1): Promise<Cluster> {
  const fleet = await Cluster.create({ tasks });
  for (let i = 1; i <= masters; i++) await fleet.startMaster(`m${i}`, { args: ["--reassign-delay", delay] });
  for (const name of workers) fleet.startWorker(name);
  await fleet.waitConverged({ timeoutMs: 60_000 });
  return fleet;
}

/** Waits until the leader recorded a hold for `worker` (and `also` holds of its entry); resolves with that entry. */
async function heldWorker(
  fleet: Cluster,
  worker: string,
  also: (entry: StatusReport["workers"][number]) => boolean = () => true,
): Promise<StatusReport["workers"][number]> {
  let entry: StatusReport["workers"][number] | undefined;
  await waitFor(
    `the leader holds ${worker}'s tasks`,
    async () => {
      entry = (await status(fleet)).workers.find((w) => w.name === worker);
      return entry?.held !== undefined && also(entry);
    },
    30_000,
  );
  return entry as StatusReport["workers"][number];
}

const connection = (fleet: Cluster) => ["--etcd", fleet.endpoints.join(","), "--root", fleet.root];

async function history(fleet: Cluster): Promise<HistoryEntry[]> {
  const result = await runCli(["history", "--json", "--limit", "1000", ...connection(fleet)]);
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as HistoryEntry[];
}

/** What `status --json` prints, read in this process (a CLI run per poll is slow on a loaded machine). */
function status(fleet: Cluster): Promise<StatusReport> {
  return readStatusReport(fleet.client, fleet.root);
}

/** Per task, the first start after `after` by a process other than `exceptPid` (Infinity: none yet). */
function firstStarts(fleet: Cluster, tasks: readonly string[], after: number, exceptPid?: number): number[] {
  return tasks.map((task) => fleet.firstStart(task, after, exceptPid)?.t ?? Number.POSITIVE_INFINITY);
}

describe("--reassign-delay (real processes)", () => {
  it(
    "a worker SIGKILLed with 100 tasks and restarted under its name gets exactly them back: 0 moves, never twice",
    async () => {
      const fleet = await cluster("60s", unitTasks(200), ["w1", "w2"]);
      try {
        const before = (await fleet.state()).assignment;
        const held = before.get("w2") ?? [];
        expect(held).toHaveLength(100);
        const lastRevision = Math.max(0, ...(await history(fleet)).map((entry) => entry.revision));

        const killedAt = await fleet.kill("w2");
        // Restarted once the leader has noticed the crash (a restart faster than that holds nothing).
        expect((await heldWorker(fleet, "w2")).notRunning).toHaveLength(100);
        const restartedAt = now();
        const restarted = fleet.startWorker("w2");
        await fleet.waitConverged({ timeoutMs: 60_000 });

        expect((await fleet.state()).assignment).toEqual(before);
        const after = (await history(fleet)).filter((entry) => entry.revision > lastRevision);
        expect(after.map((entry) => entry.moved)).toEqual(after.map(() => 0));
        expect(after.flatMap((entry) => entry.moves)).toEqual([]);
        // The gap is the restart: the new process starts them as soon as it is up.
        const gaps = firstStarts(fleet, held, killedAt).map((t) => t - killedAt);
        expect(fleet.events().filter((e) => e.pid === restarted.pid && e.event === "start")).toHaveLength(
          100,
        );
        expect(Math.max(...gaps) - (restartedAt - killedAt)).toBeLessThan(LOAD_SLACK_MS);
        console.info(
          `restart in place: restarted ${Math.round(restartedAt - killedAt)} ms after the kill, gap ${Math.round(Math.min(...gaps))}–${Math.round(Math.max(...gaps))} ms`,
        );
        expect(await fleet.invariantProblems()).toEqual([]);
      } finally {
        await fleet.close();
      }
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    "restarted under another name, the held tasks move when the recorded hold ends, across a leader change",
    async () => {
      const fleet = await cluster("10s", unitTasks(40), ["w1", "w2"], 2);
      try {
        const held = (await fleet.state()).assignment.get("w2") ?? [];
        const killedAt = await fleet.kill("w2");
        // Started once the crash is noticed: a worker joining while w2 still looked alive takes some of its tasks.
        const w2 = await heldWorker(fleet, "w2");
        fleet.startWorker("w3");
        expect(w2.notRunning.map((t) => [t.id, t.state, t.until])).toEqual(
          [...held].sort().map((id) => [id, "held", w2.held?.until]),
        );
        // The hold is in etcd: the standby that takes over ends it when it was recorded to end.
        const leader = (await fleet.leader()) as string;
        await fleet.kill(leader);
        await waitFor("the standby leads", async () => (await fleet.leader()) !== leader, 30_000);

        await fleet.waitConverged({ timeoutMs: 60_000 });
        const until = Date.parse(w2.held?.until ?? "");
        const starts = firstStarts(fleet, held, killedAt);
        expect(Math.min(...starts)).toBeGreaterThanOrEqual(until - 50);
        expect(Math.max(...starts)).toBeLessThan(until + LOAD_SLACK_MS);
        console.info(
          `another name: held until ${Math.round(until - killedAt)} ms after the kill, moved ${Math.round(Math.min(...starts) - killedAt)}–${Math.round(Math.max(...starts) - killedAt)} ms after it`,
        );
        expect((await fleet.state()).view.assignments.has("w2")).toBe(false);
        expect(await fleet.invariantProblems()).toEqual([]);
      } finally {
        await fleet.close();
      }
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    "tasks with a short maxDowntime move at TTL; `escheduler release` moves the rest at once",
    async () => {
      const tasks = unitTasks(20).map((task, i) => (i % 2 === 0 ? { ...task, maxDowntime: "1s" } : task));
      const fleet = await cluster("10m", tasks, ["w1", "w2"]);
      try {
        const onW2 = (await fleet.state()).assignment.get("w2") ?? [];
        const short = onW2.filter((id) => tasks.find((t) => t.id === id)?.maxDowntime !== undefined);
        const patient = onW2.filter((id) => !short.includes(id));
        expect(short.length).toBeGreaterThan(0);
        expect(patient.length).toBeGreaterThan(0);
        const w2Pid = fleet.node("w2").pid;
        const killedAt = await fleet.kill("w2");

        await waitFor(
          "the short tasks run on w1",
          () => firstStarts(fleet, short, killedAt, w2Pid).every(Number.isFinite),
          20_000,
        );
        const moved = firstStarts(fleet, short, killedAt, w2Pid).map((t) => t - killedAt);
        expect(Math.max(...moved)).toBeLessThan(TTL_MS + LOAD_SLACK_MS);
        // The workers start the moved tasks before the schedule's last write, its plan record: read the status
        // once that record is there, so that a later read sees the same.
        const w2 = await heldWorker(fleet, "w2", (entry) => !entry.inPlan);
        expect(w2.notRunning.map((t) => t.id).sort()).toEqual([...patient].sort());
        expect(w2.notRunning.every((t) => t.state === "held" && t.until === w2.held?.until)).toBe(true);
        const holdEnd = Date.parse(w2.held?.until ?? "") / 1000;
        await waitForMetrics(fleet.node("m1").http, [
          new RegExp(`^escheduler_tasks_held ${patient.length}$`, "m"),
          new RegExp(`^escheduler_hold_end_timestamp_seconds ${holdEnd}$`, "m"),
        ]);
        const text = await runCli(["status", ...connection(fleet)]);
        expect(text.stdout).toContain(`held for w2 until ${w2?.held?.until}`);
        const json = await runCli(["status", "--json", ...connection(fleet)]);
        expect(JSON.parse(json.stdout)).toMatchObject({ workers: expect.arrayContaining([w2]) });
        expect(
          firstStarts(fleet, patient, killedAt, w2Pid).every((t) => t === Number.POSITIVE_INFINITY),
        ).toBe(true);

        const releasedAt = now();
        const released = await runCli(["release", "w2", ...connection(fleet)]);
        expect(released.code, released.stderr).toBe(0);
        expect(released.stdout).toContain("released the tasks held for w2");
        await fleet.waitConverged({ timeoutMs: 30_000 });
        const afterRelease = firstStarts(fleet, patient, releasedAt, w2Pid).map((t) => t - releasedAt);
        expect(Math.max(...afterRelease)).toBeLessThan(LOAD_SLACK_MS);
        await waitForMetrics(fleet.node("m1").http, [
          /^escheduler_tasks_held 0$/m,
          /^escheduler_hold_end_timestamp_seconds 0$/m,
        ]);
        const again = await runCli(["release", "w2", ...connection(fleet)]);
        expect([again.code, again.stdout.trim()]).toEqual([0, "nothing is held for w2"]);
        expect(await fleet.invariantProblems()).toEqual([]);
      } finally {
        await fleet.close();
      }
    },
    SCENARIO_TIMEOUT_MS,
  );
});
