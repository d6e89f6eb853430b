import { Etcd3 } from "etcd3";
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
 * `/<root>/` — nothing else. Done through the etcd API (etcd3's auth client), so the test needs no
 * `etcdctl` binary (Debian ships it apart from `etcd-server`).
 */
async function enableAuth(etcd: EtcdMember, root: string): Promise<void> {
  const admin = new Etcd3({ hosts: etcd.endpoint });
  try {
    await admin.user("root").create(ROOT_PASSWORD);
    await admin.role("root").create(); // etcd enables auth only when user root has role root
    await admin.user("root").addRole("root");
    const role = await admin.role("escheduler").create();
    await role.grant({ permission: "Readwrite", range: admin.range({ prefix: `/${root}/` }) });
    await admin.user("app").create(APP_PASSWORD);
    await admin.user("app").addRole("escheduler");
    await admin.auth.authEnable();
  } finally {
    admin.close();
  }
}

describe("etcd with authentication, the user limited to the root prefix", () => {
  const root = uniqueRoot("auth");
  let etcd: EtcdMember;

  beforeAll(async () => {
    await ensureBuilt();
    etcd = await startEtcd();
    await enableAuth(etcd, root);
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
