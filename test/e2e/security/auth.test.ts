import { execFileSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliExit, ensureBuilt, runCli } from "../../helpers/cli.js";
import { Cluster, type EtcdAccess, RECORDING_HANDLER, unitTasks } from "../../helpers/cluster.js";
import { uniqueRoot } from "../../helpers/context.js";
import { type EtcdMember, startEtcd } from "../../helpers/etcd.js";

const ROOT_PASSWORD = "root-secret";
const APP_PASSWORD = "app-secret";

/** A user error: exit 2 and exactly one line on stderr. */
function expectOneLineError(exit: CliExit, mentions: RegExp): void {
  const lines = exit.stderr.split("\n").filter((line) => line !== "");
  expect({ code: exit.code, lines }).toEqual({ code: 2, lines: [expect.stringMatching(mentions)] });
}

/**
 * Enables auth on `etcd`: a root user, and user `app` whose only role reads and writes the prefix
 * `/<root>/` — nothing else.
 */
function enableAuth(etcd: EtcdMember, root: string): void {
  const etcdctl = (...args: string[]) =>
    execFileSync("etcdctl", ["--endpoints", etcd.endpoint, ...args], {
      env: { ...process.env, ETCDCTL_API: "3" },
      stdio: "pipe",
    });
  etcdctl("user", "add", "root", `--new-user-password=${ROOT_PASSWORD}`, "--interactive=false");
  etcdctl("role", "add", "escheduler");
  etcdctl("role", "grant-permission", "escheduler", "--prefix=true", "readwrite", `/${root}/`);
  etcdctl("user", "add", "app", `--new-user-password=${APP_PASSWORD}`, "--interactive=false");
  etcdctl("user", "grant-role", "app", "escheduler");
  etcdctl("auth", "enable");
}

describe("etcd with authentication, the user limited to the root prefix", () => {
  const root = uniqueRoot("auth");
  let etcd: EtcdMember;

  beforeAll(async () => {
    await ensureBuilt();
    etcd = await startEtcd();
    enableAuth(etcd, root);
  });
  afterAll(() => etcd?.destroy());

  it("a master and workers given --etcd-user and ESCHEDULER_ETCD_PASSWORD run every task", async () => {
    const access: EtcdAccess = {
      args: ["--etcd-user", "app"],
      env: { ESCHEDULER_ETCD_PASSWORD: APP_PASSWORD },
      client: { etcdUser: "app", etcdPassword: APP_PASSWORD },
    };
    const cluster = await Cluster.start({
      endpoints: [etcd.hostPort],
      root,
      access,
      masters: 1,
      workers: 2,
      tasks: unitTasks(8),
    });
    expect(await cluster.invariantProblems()).toEqual([]);
    expect(
      (
        await runCli(["probe", "--etcd", etcd.hostPort, "--root", root, "--etcd-user", "app"], {
          env: access.env,
        })
      ).code,
    ).toBe(0);
  });

  it("a wrong password is a one-line error and exit 2", async () => {
    const exit = await runCli(
      [
        "worker",
        "--handler",
        RECORDING_HANDLER,
        "--etcd",
        etcd.hostPort,
        "--root",
        root,
        "--etcd-user",
        "app",
      ],
      { env: { ESCHEDULER_ETCD_PASSWORD: "not-the-password", ESCHEDULER_RECORD_FILE: "/dev/null" } },
    );
    expectOneLineError(exit, /^escheduler: .*(authentication failed|credentials)/);
  });
});
