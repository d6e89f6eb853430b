import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { ensureBuilt, REPO } from "../../helpers/cli.js";

const SETUP = join(REPO, "scripts", "setup.mjs");

/** Runs the set-up (without --browser: etcd only) with `env` on top of this process's, minus ETCD_ENDPOINTS. */
function setup(env: Record<string, string>): { code: number | null; stderr: string } {
  const environment: NodeJS.ProcessEnv = { ...process.env, ESCHEDULER_SETUP_QUIET: "0", ...env };
  delete environment.ETCD_ENDPOINTS;
  const result = spawnSync(process.execPath, [SETUP], {
    cwd: REPO,
    env: environment,
    encoding: "utf8",
    timeout: 60_000,
  });
  return { code: result.status, stderr: result.stderr };
}

/** The path of the etcd binary the tests run (ETCD_BINARY, else `etcd` on PATH), as `command -v` gives it. */
function testEtcd(): string {
  const found = spawnSync("sh", ["-c", 'command -v "$1"', "sh", process.env.ETCD_BINARY ?? "etcd"], {
    encoding: "utf8",
  });
  return found.stdout.trim();
}

describe("the set-up with ETCD_BINARY", () => {
  // Dependencies and dist/ up to date: the set-up then only looks at etcd.
  beforeAll(ensureBuilt);

  it("prints the version of the named binary and where it is", () => {
    const binary = testEtcd();
    expect(binary).not.toBe("");
    const { code, stderr } = setup({ ETCD_BINARY: binary });
    expect(code).toBe(0);
    const ready = stderr.split("\n").find((line) => line.startsWith("setup: ready"));
    expect(ready).toMatch(/^setup: ready \(etcd Version: \d+\.\d+\.\d+: /);
    expect(ready?.endsWith(`: ${binary})`)).toBe(true);
  });

  it("refuses a path that is no executable, in one line, and installs nothing", () => {
    const { code, stderr } = setup({ ETCD_BINARY: "/nonexistent/etcd" });
    expect(code).toBe(1);
    expect(stderr.trim()).toBe(
      "setup: ETCD_BINARY is /nonexistent/etcd, which is not an executable etcd: fix the path or unset ETCD_BINARY",
    );
  });
});
