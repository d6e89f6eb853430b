import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CliProcess, EXAMPLE_GENERATOR, EXAMPLE_HANDLER, ensureBuilt, REPO } from "../../helpers/cli.js";
import { etcdEndpoints, uniqueRoot, waitFor } from "../../helpers/context.js";
import { freePort } from "../../helpers/etcd.js";
import { metricNames, promtool, shippedQueries } from "../../helpers/monitoring.js";

/** Metric names in a Prometheus text exposition (histograms as their _bucket, _sum and _count series). */
function exposedNames(text: string): Set<string> {
  return new Set(
    text
      .split("\n")
      .filter((line) => line !== "" && !line.startsWith("#"))
      .map((line) => /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)![0]),
  );
}

describe("what the monitoring files and the README query is what a real master and worker export", () => {
  const root = uniqueRoot("monitoring");
  const nodes: CliProcess[] = [];
  let exposed: Set<string>;
  let scrapes: string[];

  const start = async (role: "master" | "worker", args: string[]) => {
    const http = `127.0.0.1:${await freePort()}`;
    const connection = ["--etcd", etcdEndpoints().join(","), "--root", root, "--ttl", "2s"];
    nodes.push(new CliProcess([role, "--name", `${role}-1`, "--http", http, ...connection, ...args]));
    return `http://${http}`;
  };

  beforeAll(async () => {
    await ensureBuilt();
    const master = await start("master", ["--generator", EXAMPLE_GENERATOR, "--rebalance-wait", "100ms"]);
    const worker = await start("worker", ["--handler", EXAMPLE_HANDLER]);
    const scrape = async (url: string) => (await fetch(`${url}/metrics`)).text();
    // Scrape once the worker runs its tasks: every series, a start latency included, then exists.
    await waitFor(
      "the worker to run its tasks",
      async () =>
        /^escheduler_task_start_seconds_count\{worker="worker-1"\} [1-9]/m.test(await scrape(worker)),
      30_000,
    );
    scrapes = [await scrape(master), await scrape(worker)];
    exposed = new Set(scrapes.flatMap((text) => [...exposedNames(text)]));
  });
  afterAll(async () => {
    await Promise.all(nodes.map((node) => node.stop()));
  });

  it("every alert and dashboard query names only metrics they export", () => {
    const missing = shippedQueries().flatMap(({ source, expr }) =>
      metricNames(expr)
        .filter((name) => !exposed.has(name))
        .map((name) => `${source}: ${name}`),
    );
    expect(missing).toEqual([]);
  });

  it("every escheduler metric the README names is exported", () => {
    const readme = readFileSync(`${REPO}/README.md`, "utf8");
    const named = new Set([...readme.matchAll(/`(escheduler_[a-z0-9_]+)/g)].map((match) => match[1]));
    expect(named.size).toBeGreaterThanOrEqual(15);
    const histogramSeries = (name: string) => exposed.has(`${name}_bucket`) && exposed.has(`${name}_count`);
    expect([...named].filter((name) => !exposed.has(name) && !histogramSeries(name))).toEqual([]);
  });

  it("every escheduler metric they export is named in the README and shown on the dashboard", () => {
    const base = (name: string) => name.replace(/_(bucket|sum|count)$/, "");
    const ours = [...new Set([...exposed].filter((name) => name.startsWith("escheduler_")).map(base))];
    expect(ours).toEqual(
      expect.arrayContaining([
        "escheduler_tasks_held",
        "escheduler_hold_end_timestamp_seconds",
        "escheduler_tasks_quarantined",
      ]),
    );
    const readme = readFileSync(`${REPO}/README.md`, "utf8");
    expect(ours.filter((name) => !readme.includes(`\`${name}`))).toEqual([]);
    const dashboard = new Set(
      shippedQueries()
        .filter(({ source }) => source.startsWith("dashboard"))
        .flatMap(({ expr }) => metricNames(expr).map(base)),
    );
    expect(ours.filter((name) => !dashboard.has(name))).toEqual([]);
  });

  it("our metrics pass promtool's metric linter (prom-client's own nodejs_*_total gauges do not)", () => {
    for (const text of scrapes) {
      const result = promtool(["check", "metrics"], text);
      const problems = result.output.split("\n").filter((line) => line !== "");
      expect(problems.filter((line) => !/^nodejs_\w+_total non-counter/.test(line))).toEqual([]);
    }
  });
});
