import { describe, expect, it } from "vitest";
import { runCli } from "../../helpers/cli.js";
import { Cluster, now } from "../../helpers/cluster.js";
import { waitFor } from "../../helpers/context.js";
import { longestGaps } from "../../invariants/index.js";

const REBALANCE_WAIT_MS = 200;
/** Longest a task may run nowhere while it changes hands: the old owner stops it, the master notices and writes it anew. */
const HANDOFF_MS = REBALANCE_WAIT_MS + 1_000;

describe("a rolling update of every worker (2 masters, 3 workers, real processes)", () => {
  it("start a new worker, wait for `probe --worker NEW` to exit 0, SIGTERM an old one: no task is dropped longer than a hand-off, none runs twice", async () => {
    const cluster = await Cluster.start({ ttl: "2s", rebalanceWait: `${REBALANCE_WAIT_MS}ms`, workers: 3 });
    const probe = (name: string) =>
      runCli(["probe", "--worker", name, "--etcd", cluster.endpoints.join(","), "--root", cluster.root]);
    const rollingFrom = now();

    for (const [old, fresh] of [
      ["w1", "v2-w1"],
      ["w2", "v2-w2"],
      ["w3", "v2-w3"],
    ]) {
      cluster.startWorker(fresh);
      await waitFor(
        `probe --worker ${fresh} to exit 0`,
        async () => (await probe(fresh)).code === 0,
        30_000,
        100,
      );
      expect((await cluster.terminate(old)).code).toBe(0);
    }

    const final = await cluster.waitConverged();
    const rollingTo = now();
    expect([...final.keys()].sort()).toEqual(["v2-w1", "v2-w2", "v2-w3"]);
    const { intervals } = cluster.intervals();
    const gaps = longestGaps(
      intervals,
      cluster.generatedTasks.map((task) => task.id),
      { from: rollingFrom, to: rollingTo },
    );
    const dropped = [...gaps]
      .filter(([, gap]) => gap.ms > HANDOFF_MS)
      .map(([task, gap]) => `${task}: ${Math.round(gap.ms)}ms`);
    expect(dropped).toEqual([]);
    expect(await cluster.invariantProblems()).toEqual([]);
  });
});
