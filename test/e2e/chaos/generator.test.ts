import { describe, expect, it } from "vitest";
import { Cluster, unitTasks } from "../../helpers/cluster.js";
import type { HistoryEvent } from "../../invariants/index.js";

const failures = [
  ["throw", /controllable generator told to throw/],
  ["hang", /timed out after 500ms/],
  ["duplicate", /duplicate id/],
  ["bad-id", /"bad\/id"/],
  ["oversize", /"oversize"/],
  ["non-json", /"non-json".*function/],
] as const;

describe("a failing generator under a running cluster (2 masters, 3 workers, real processes)", () => {
  it("throwing, hanging, or returning duplicates, bad ids, oversize or non-JSON payloads leaves the assignment as it was", async () => {
    const cluster = await Cluster.start({
      ttl: "2s",
      rebalanceWait: "200ms",
      generatorTimeout: "500ms",
      workers: 3,
    });
    const before = await cluster.state();
    await cluster.history.caughtUp(cluster.client);
    const seen = cluster.history.events.length;
    const eventsBefore = cluster.events().length;

    for (const [behaviour, culprit] of failures) {
      cluster.setBehaviour(behaviour);
      const answer = await cluster.schedule();
      expect({ behaviour, status: answer.status }).toEqual({ behaviour, status: 500 });
      expect((JSON.parse(answer.body) as { error: string }).error).toMatch(culprit);
    }

    await cluster.history.caughtUp(cluster.client);
    const written = cluster.history.events
      .slice(seen)
      .filter(
        (event: HistoryEvent) =>
          event.key.startsWith(cluster.keys.tasksPrefix) || event.key === cluster.keys.plan,
      );
    expect(written).toEqual([]);
    expect((await cluster.state()).assignment).toEqual(before.assignment);
    expect(cluster.events().slice(eventsBefore)).toEqual([]); // no task stopped or started

    // Once it behaves again, the next schedule applies its (new) list.
    cluster.setTasks(unitTasks(30));
    expect((await cluster.schedule()).status).toBe(200);
    await cluster.waitConverged();
    expect(await cluster.invariantProblems()).toEqual([]);
  });
});
