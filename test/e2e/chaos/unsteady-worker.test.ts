import { describe, expect, it } from "vitest";
import { Cluster, unitTasks } from "../../helpers/cluster.js";
import { waitFor } from "../../helpers/context.js";
import { TcpProxy } from "../../helpers/tcp-proxy.js";

const TTL_MS = 2_000;
/**
 * One-way delay on w1's link: keep-alives go every TTL/4 = 500 ms and come back 1 s later, past the
 * margin (TTL − 30 %), so w1's lease is suspended every round trip and resumed by the next answer,
 * yet never lapses — the flapping worker that runs almost none of its tasks.
 */
const FLAP_LATENCY_MS = 500;
const BOUND_MS = 40_000;

describe("a worker whose lease flaps without end (real processes)", () => {
  it("steps aside: while it flaps its tasks run on steady workers, each exactly once; once steady it takes its share again", async () => {
    const cluster = await Cluster.create({ ttl: `${TTL_MS}ms`, rebalanceWait: "200ms" });
    const [host, port] = cluster.endpoints[0].split(":");
    const proxy = new TcpProxy({ host, port: Number(port) });
    await proxy.start();
    try {
      cluster.setTasks(unitTasks(9));
      await cluster.startMaster("m1");
      for (const name of ["w2", "w3"]) cluster.startWorker(name);
      cluster.startWorker("w1", { etcd: [proxy.hostPort] });
      const before = await cluster.waitConverged();
      expect(before.get("w1")?.length).toBeGreaterThan(0);

      proxy.setLatency(FLAP_LATENCY_MS);
      const ids = cluster.generatedTasks.map((task) => task.id);
      await waitFor(
        "every task running on w2 or w3, none left on w1",
        async () => {
          const { view } = await cluster.state();
          const running = (worker: string) =>
            [...(view.statuses.get(worker) ?? [])].filter(([, s]) => s.state === "running").map(([id]) => id);
          const steady = [...running("w2"), ...running("w3")];
          return (view.assignments.get("w1") ?? []).length === 0 && ids.every((id) => steady.includes(id));
        },
        BOUND_MS,
        200,
      );
      const mark = await cluster.client.get(cluster.keys.draining("w1")).string();
      expect(JSON.parse(mark ?? "{}").reason, cluster.diagnostics()).toMatch(/^unsteady lease/);

      proxy.setLatency(0);
      await waitFor(
        "w1 takes tasks again",
        async () => ((await cluster.state()).assignment.get("w1") ?? []).length > 0,
        BOUND_MS,
        200,
      );
      await cluster.waitConverged({ timeoutMs: BOUND_MS });
      expect(await cluster.invariantProblems()).toEqual([]);
    } finally {
      await cluster.close();
      await proxy.stop();
    }
  });
});
