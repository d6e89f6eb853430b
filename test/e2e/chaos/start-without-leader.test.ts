import { afterAll, describe, expect, it } from "vitest";
import { createEtcdClient, keyLayout } from "../../../src/node/index.js";
import { CliProcess, EXAMPLE_GENERATOR, EXAMPLE_HANDLER, ensureBuilt, runCli } from "../../helpers/cli.js";
import { uniqueRoot, waitFor } from "../../helpers/context.js";
import { freePort, startEtcdCluster } from "../../helpers/etcd.js";

/** Short, to see the wait outlast it; long enough for a first answer from a loaded machine's etcd. */
const DIAL_TIMEOUT_MS = 2_500;

interface LogLine {
  msg?: string;
  waitedMs?: number;
}

/** The process's pino lines (stdout) whose message starts with `prefix`. */
function logLines(node: CliProcess, prefix: string): LogLine[] {
  return node.stdout
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as LogLine)
    .filter((line) => line.msg?.startsWith(prefix));
}

/**
 * A daemon started while etcd answers but cannot serve (a 3-member cluster with 2 members down: no
 * quorum, no leader) waits for it, however long, instead of exiting at --dial-timeout; one where
 * nothing answers at all still exits 2 with one line within the dial timeout.
 */
describe("master and worker start-up while etcd has no leader (real processes, a 3-member etcd)", () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterAll(async () => {
    for (const step of cleanup.reverse()) await step();
  });

  it("wait past their dial timeout with one warning and progress warnings, then start once etcd has a leader", async () => {
    await ensureBuilt();
    const etcd = await startEtcdCluster(3);
    cleanup.push(() => etcd.destroy());
    await Promise.all([etcd.members[1].stop(), etcd.members[2].stop()]);
    const root = uniqueRoot("no-leader");
    const shared = ["--etcd", etcd.endpoints.join(","), "--root", root, "--ttl", "2s"];
    const dial = ["--dial-timeout", `${DIAL_TIMEOUT_MS}ms`];
    const worker = new CliProcess([
      "worker",
      "--handler",
      EXAMPLE_HANDLER,
      "--name",
      "w1",
      ...shared,
      ...dial,
    ]);
    const master = new CliProcess([
      "master",
      "--generator",
      EXAMPLE_GENERATOR,
      "--name",
      "m1",
      ...shared,
      ...dial,
    ]);
    cleanup.push(
      () => worker.stop("SIGKILL"),
      () => master.stop("SIGKILL"),
    );

    for (const node of [worker, master]) {
      // The first progress warning comes 5 s after the first warning: twice the dial timeout.
      await node.waitForOutput(/"msg":"still waiting for etcd"/, 60_000);
      expect(node.running, node.output()).toBe(true);
      expect(logLines(node, "waiting for etcd"), node.output()).toHaveLength(1);
      const progress = logLines(node, "still waiting for etcd");
      expect(progress[0].waitedMs, node.output()).toBeGreaterThan(DIAL_TIMEOUT_MS);
    }

    await Promise.all([etcd.members[1].start(), etcd.members[2].start()]);
    const client = createEtcdClient({ etcd: etcd.endpoints, dialTimeout: 5_000 });
    cleanup.push(async () => client.close());
    await waitFor(
      "the worker's registration",
      async () => await client.get(keyLayout(root).worker("w1")).exists(),
      60_000,
      100,
    );
    await master.waitForOutput(/"msg":"elected leader"/, 60_000);
    await worker.waitForOutput(/"msg":"etcd serves: going on"/);
    for (const node of [worker, master]) expect((await node.stop()).code, node.output()).toBe(0);
  }, 180_000);

  it("exit 2 with one line within the dial timeout when no endpoint answers at all", async () => {
    await ensureBuilt();
    const nobody = [`127.0.0.1:${await freePort()}`, `127.0.0.1:${await freePort()}`];
    for (const args of [
      ["worker", "--handler", EXAMPLE_HANDLER],
      ["master", "--generator", EXAMPLE_GENERATOR],
    ]) {
      const started = Date.now();
      const exit = await runCli([
        ...args,
        "--etcd",
        nobody.join(","),
        "--dial-timeout",
        `${DIAL_TIMEOUT_MS}ms`,
      ]);
      expect(exit.code, exit.stderr).toBe(2);
      expect(exit.stderr.trim().split("\n"), exit.stderr).toHaveLength(1);
      expect(exit.stderr).toMatch(
        new RegExp(
          `cannot use etcd at .*: no answer for ${DIAL_TIMEOUT_MS}ms \\(--dial-timeout\\): .*UNAVAILABLE`,
        ),
      );
      // Node's start-up and the module load come on top of the dial timeout on a loaded machine.
      expect(Date.now() - started).toBeLessThan(DIAL_TIMEOUT_MS + 15_000);
    }
  });
});
