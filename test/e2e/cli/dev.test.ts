import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { CliProcess, ensureBuilt, processExists } from "../../helpers/cli.js";
import { etcdEndpoints } from "../../helpers/context.js";

/** dev starts its own etcd when the binary is installed; otherwise it is pointed at the run's etcd. */
function etcdArgs(): string[] {
  const installed = spawnSync("sh", ["-c", `command -v ${process.env.ETCD_BINARY ?? "etcd"}`]).status === 0;
  return installed ? [] : ["--etcd", etcdEndpoints().join(",")];
}

describe("escheduler dev", () => {
  beforeAll(() => ensureBuilt());

  it("--for 20s starts a cluster that converges, then exits 0 leaving no process or temporary folder", async () => {
    const dev = new CliProcess(["dev", "--for", "20s", ...etcdArgs()], { env: { ETCD_ENDPOINTS: "" } });

    const [, folder] = await dev.waitForOutput(/files: (\S+)/);
    const nodesLine = (await dev.waitForOutput(/^nodes: .*$/m))[0];
    const etcdLine = (await dev.waitForOutput(/^escheduler dev: .*$/m))[0];
    const pids = [...`${etcdLine} ${nodesLine}`.matchAll(/pid (\d+)/g)].map((match) => Number(match[1]));
    expect(existsSync(folder)).toBe(true);
    expect(pids.length).toBeGreaterThanOrEqual(4); // a master and 3 workers (+ etcd when dev started it)
    // Four node processes start on two cores: at load 15 the cluster was ready only 12 s after its nodes line.
    await dev.waitForOutput(/cluster ready: 3 workers, 30 tasks running/, 18_000);
    const [, consoleUrl, token] = await dev.waitForOutput(
      /^console: (\S+) \(live web view; admin token (\S+)\)$/m,
    );
    const page = await fetch(consoleUrl);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("<title>escheduler console</title>");
    const snapshot = await (await fetch(`${consoleUrl}console/snapshot`)).json();
    expect(snapshot).toMatchObject({ admin: true, totals: { workers: 3, tasks: 30 } });
    const pause = (authorization?: string) =>
      fetch(`${consoleUrl}console/actions/pause`, {
        method: "POST",
        headers: { "content-type": "application/json", ...(authorization ? { authorization } : {}) },
      });
    expect((await pause()).status).toBe(401);
    expect((await pause(`Bearer ${token}`)).status).toBe(200);

    const exit = await dev.exited;

    expect(exit.code, dev.output()).toBe(0);
    expect(exit.stdout).toContain("stopping: --for 20s elapsed");
    expect(exit.stdout).toMatch(
      /stopped master-1 exit 0, worker-\d exit 0, worker-\d exit 0, worker-\d exit 0/,
    );
    expect(pids.filter(processExists)).toEqual([]);
    expect(existsSync(folder)).toBe(false);
  });

  it("Ctrl-C (SIGINT) stops everything it started and exits 0", async () => {
    const dev = new CliProcess(["dev", "--workers", "2", "--tasks", "6", ...etcdArgs()], {
      env: { ETCD_ENDPOINTS: "" },
    });
    const [, folder] = await dev.waitForOutput(/files: (\S+)/);
    const pids = [...(await dev.waitForOutput(/^nodes: .*$/m))[0].matchAll(/pid (\d+)/g)].map((m) =>
      Number(m[1]),
    );
    await dev.waitForOutput(/cluster ready: 2 workers, 6 tasks running/, 15_000);

    const exit = await dev.stop("SIGINT");

    expect(exit.code, dev.output()).toBe(0);
    expect(exit.stdout).toContain("stopping: SIGINT");
    expect(pids.filter(processExists)).toEqual([]);
    expect(existsSync(folder)).toBe(false);
  });
});
