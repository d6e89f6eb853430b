import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliExit, ensureBuilt, runCli } from "../../helpers/cli.js";
import { Cluster, type EtcdAccess, RECORDING_HANDLER, unitTasks } from "../../helpers/cluster.js";
import { uniqueRoot } from "../../helpers/context.js";
import { type EtcdMember, startEtcd } from "../../helpers/etcd.js";
import { makePki, type Pki, tlsHealthCheck, tlsServerArgs } from "./pki.js";

/** A user error: exit 2 and exactly one line on stderr. */
function expectOneLineError(exit: CliExit, mentions: RegExp): void {
  const lines = exit.stderr.split("\n").filter((line) => line !== "");
  expect({ code: exit.code, lines }).toEqual({ code: 2, lines: [expect.stringMatching(mentions)] });
}

describe("etcd over TLS with client certificates", () => {
  let pki: Pki;
  let etcd: EtcdMember;
  let access: EtcdAccess;

  beforeAll(async () => {
    await ensureBuilt();
    pki = makePki();
    etcd = await startEtcd({
      args: tlsServerArgs(pki),
      clientScheme: "https",
      healthCheck: tlsHealthCheck(pki),
    });
    access = {
      args: ["--etcd-ca", pki.ca, "--etcd-cert", pki.clientCert, "--etcd-key", pki.clientKey],
      client: { etcdCa: pki.ca, etcdCert: pki.clientCert, etcdKey: pki.clientKey },
    };
  });
  afterAll(async () => {
    await etcd?.destroy();
    pki?.destroy();
  });

  it("a master and workers given --etcd-ca, --etcd-cert and --etcd-key run every task", async () => {
    const cluster = await Cluster.start({
      endpoints: [etcd.hostPort],
      access,
      masters: 1,
      workers: 2,
      tasks: unitTasks(8),
    });
    expect(await cluster.invariantProblems()).toEqual([]);
  });

  it("a CA that did not sign etcd's certificate is a one-line error and exit 2", async () => {
    const exit = await runCli(
      [
        "worker",
        "--handler",
        RECORDING_HANDLER,
        "--etcd",
        etcd.hostPort,
        "--root",
        uniqueRoot("tls"),
        "--etcd-ca",
        pki.otherCa,
        "--etcd-cert",
        pki.clientCert,
        "--etcd-key",
        pki.clientKey,
        "--dial-timeout",
        "2s",
      ],
      { env: { ESCHEDULER_RECORD_FILE: "/dev/null" } },
    );
    expectOneLineError(exit, /^escheduler: cannot use etcd at 127\.0\.0\.1:\d+/);
  });

  it("no client certificate, where etcd requires one, is a one-line error and exit 2", async () => {
    const exit = await runCli([
      "probe",
      "--etcd",
      etcd.hostPort,
      "--root",
      uniqueRoot("tls"),
      "--etcd-ca",
      pki.ca,
      "--dial-timeout",
      "2s",
    ]);
    expectOneLineError(exit, /^escheduler: cannot use etcd at 127\.0\.0\.1:\d+/);
  });
});
