import { describe, expect, it } from "vitest";
import { runCli } from "../../helpers/cli.js";
import { Cluster, now, unitTasks } from "../../helpers/cluster.js";
import { waitFor } from "../../helpers/context.js";
import type { RunInterval } from "../../invariants/index.js";

/** Task → how often it started in another process than the one that ran it before, from `since` on. */
function movesPerTask(intervals: readonly RunInterval[], since: number): Map<string, number> {
  const runs = new Map<string, RunInterval[]>();
  for (const run of intervals) runs.set(run.task, [...(runs.get(run.task) ?? []), run]);
  const moves = new Map<string, number>();
  for (const [task, list] of runs) {
    list.sort((a, b) => a.from - b.from);
    moves.set(
      task,
      list.filter((run, i) => i > 0 && run.from >= since && run.pid !== list[i - 1].pid).length,
    );
  }
  return moves;
}

describe("a rollout to a new generation (1 master, 3 workers of generation v1 replaced by 3 of v2, real processes)", () => {
  it("start a v2 worker, wait for `probe --worker` to exit 0, SIGTERM a v1 worker, repeat: each task moves exactly once, none runs twice, the end is balanced", async () => {
    const tasks = unitTasks(24, 2);
    const cluster = await Cluster.create({ ttl: "2s", rebalanceWait: "200ms", tasks });
    await cluster.startMaster("m1");
    const generation = (name: string) => ["--generation", name];
    for (const name of ["old-1", "old-2", "old-3"]) cluster.startWorker(name, { args: generation("v1") });
    await cluster.waitConverged();
    const probe = (name: string) =>
      runCli(["probe", "--worker", name, "--etcd", cluster.endpoints.join(","), "--root", cluster.root]);
    const rollingFrom = now();

    for (const i of [1, 2, 3]) {
      const fresh = `new-${i}`;
      cluster.startWorker(fresh, { args: generation("v2") });
      await waitFor(
        `probe --worker ${fresh} to exit 0`,
        async () => (await probe(fresh)).code === 0,
        30_000,
        100,
      );
      expect((await cluster.terminate(`old-${i}`)).code).toBe(0);
    }

    const final = await cluster.waitConverged();
    expect([...final.keys()].sort()).toEqual(["new-1", "new-2", "new-3"]);
    const moves = movesPerTask(cluster.intervals().intervals, rollingFrom);
    expect(new Set(moves.keys())).toEqual(new Set(tasks.map((task) => task.id)));
    expect([...moves].filter(([, count]) => count !== 1)).toEqual([]);
    const group = new Map(tasks.map((task) => [task.id, task.group]));
    for (const [worker, ids] of final) {
      const perGroup = ids.map((id) => group.get(id));
      expect({
        worker,
        g0: perGroup.filter((g) => g === "g0").length,
        g1: perGroup.filter((g) => g === "g1").length,
      }).toEqual({ worker, g0: 4, g1: 4 });
    }
    expect(await cluster.invariantProblems()).toEqual([]);
    // Its own waits bound it (three probe waits of 30 s, two convergences of 20 s); vitest's default 60 s
    // cut it short at load 16 in CI, where each `probe` process took seconds to start.
  }, 180_000);
});
