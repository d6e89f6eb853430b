import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { type AddressInfo, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keyLayout } from "../../../src/node/index.js";
import {
  BINARY,
  type CliExit,
  CliProcess,
  EXAMPLE_GENERATOR,
  EXAMPLE_HANDLER,
  ensureBuilt,
  runCli,
} from "../../helpers/cli.js";
import { etcdEndpoints, testClient, uniqueRoot, waitFor } from "../../helpers/context.js";
import { type EtcdMember, freePort, startEtcd } from "../../helpers/etcd.js";

/** A user error: exit 2 and exactly one line on stderr, without a stack trace. */
function expectOneLineUsageError(result: CliExit, mentions: RegExp): void {
  const lines = result.stderr.split("\n").filter((line) => line !== "");
  expect({ code: result.code, lines }).toEqual({ code: 2, lines: [expect.stringMatching(mentions)] });
  expect(lines[0]).toMatch(/^escheduler: /);
}

describe("every error a user can cause is one line on stderr and exit 2", () => {
  let modules: string;
  let numberModule: string;
  let throwingModule: string;
  let etcd: () => string;

  beforeAll(async () => {
    await ensureBuilt();
    modules = mkdtempSync(join(tmpdir(), "escheduler-cli-modules-"));
    numberModule = join(modules, "number.mjs");
    throwingModule = join(modules, "throws.mjs");
    writeFileSync(numberModule, "export default 42;\n");
    writeFileSync(throwingModule, "throw new Error('broken at import');\n");
    etcd = () => etcdEndpoints().join(",");
  });
  afterAll(() => modules && rmSync(modules, { recursive: true, force: true }));

  const node = () => ["--etcd", etcd(), "--root", uniqueRoot("cli-err")];

  it("rejects an unknown option", async () => {
    expectOneLineUsageError(
      await runCli(["worker", "--handler", EXAMPLE_HANDLER, "--bogus", ...node()]),
      /unknown option '--bogus'/,
    );
  });

  it("rejects an unknown command, suggesting the right one", async () => {
    expectOneLineUsageError(await runCli(["stauts"]), /unknown command 'stauts'.*status/);
  });

  it("rejects a missing command", async () => {
    expectOneLineUsageError(await runCli([]), /missing command/);
  });

  it("rejects a missing required module flag", async () => {
    expectOneLineUsageError(await runCli(["master", ...node()]), /--generator/);
  });

  it("rejects a bad duration, naming the flag and the value", async () => {
    expectOneLineUsageError(
      await runCli(["worker", "--handler", EXAMPLE_HANDLER, "--ttl", "soon", ...node()]),
      /--ttl "soon"/,
    );
  });

  it("rejects a bad count", async () => {
    expectOneLineUsageError(
      await runCli(["master", "--generator", EXAMPLE_GENERATOR, "--workers", "three", ...node()]),
      /--workers "three"/,
    );
  });

  it("rejects a bad worker label, from the flag and from ESCHEDULER_LABELS", async () => {
    expectOneLineUsageError(
      await runCli(["worker", "--handler", EXAMPLE_HANDLER, "--label", "Zone!=a", ...node()]),
      /label key "Zone!"/,
    );
    expectOneLineUsageError(
      await runCli(["worker", "--handler", EXAMPLE_HANDLER, ...node()], {
        env: { ESCHEDULER_LABELS: "zone=eu-1a,gpu" },
      }),
      /label "gpu": expected key=value/,
    );
  });

  it("rejects a bad node name", async () => {
    expectOneLineUsageError(
      await runCli(["worker", "--handler", EXAMPLE_HANDLER, "--name", "a/b", ...node()]),
      /--name "a\/b"/,
    );
  });

  it("rejects a bad --handoff, a bad --max-moving and a bad --http", async () => {
    expectOneLineUsageError(
      await runCli(["master", "--generator", EXAMPLE_GENERATOR, "--handoff", "later", ...node()]),
      /--handoff "later"/,
    );
    expectOneLineUsageError(
      await runCli(["master", "--generator", EXAMPLE_GENERATOR, "--max-moving", "0", ...node()]),
      /--max-moving "0": must be a whole number of tasks \(at least 1\) or a percentage/,
    );
    expectOneLineUsageError(
      await runCli(["worker", "--handler", EXAMPLE_HANDLER, "--http", "8080", ...node()]),
      /--http "8080"/,
    );
  });

  it("rejects an --http address that is already in use", async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    const { port } = taken.address() as AddressInfo;
    try {
      expectOneLineUsageError(
        await runCli(["worker", "--handler", EXAMPLE_HANDLER, "--http", `127.0.0.1:${port}`, ...node()]),
        new RegExp(`cannot listen on --http "127.0.0.1:${port}": EADDRINUSE`),
      );
    } finally {
      taken.close();
    }
  });

  it("rejects bad dev flags", async () => {
    expectOneLineUsageError(await runCli(["dev", "--for", "ever"]), /--for "ever"/);
  });

  it("rejects a module that cannot be read", async () => {
    expectOneLineUsageError(
      await runCli(["master", "--generator", "./no-such-generator.mjs", ...node()]),
      /cannot load generator module "\.\/no-such-generator\.mjs"/,
    );
  });

  it("rejects a module that throws while loading", async () => {
    expectOneLineUsageError(
      await runCli(["worker", "--handler", throwingModule, ...node()]),
      /handler module .*broken at import/,
    );
  });

  it("rejects modules without the right default export", async () => {
    expectOneLineUsageError(
      await runCli(["master", "--generator", numberModule, ...node()]),
      /generator module .* must default-export a function/,
    );
    expectOneLineUsageError(
      await runCli(["worker", "--handler", numberModule, ...node()]),
      /handler module .* must default-export/,
    );
  });

  it("rejects an etcd that does not answer within the dial timeout", async () => {
    const nobody = `127.0.0.1:${await freePort()}`;
    for (const args of [
      ["status"],
      ["master", "--generator", EXAMPLE_GENERATOR],
      ["worker", "--handler", EXAMPLE_HANDLER],
    ]) {
      expectOneLineUsageError(
        await runCli([...args, "--etcd", nobody, "--dial-timeout", "500ms"]),
        new RegExp(`cannot use etcd at ${nobody}`),
      );
    }
  });

  it("validates every flag before it reaches etcd: --http-admin without a token fails at once", async () => {
    const nobody = `127.0.0.1:${await freePort()}`;
    const args = ["master", "--generator", EXAMPLE_GENERATOR, "--http", "127.0.0.1:0", "--http-admin"];
    const env = { ESCHEDULER_ADMIN_TOKEN: "" };
    const result = await runCli([...args, "--etcd", nobody, "--dial-timeout", "20s"], { env });
    expectOneLineUsageError(result, /--http-admin needs the bearer token in ESCHEDULER_ADMIN_TOKEN/);
  });

  it("rejects a boolean variable that is not true, false, 1 or 0", async () => {
    const env = { ESCHEDULER_HTTP_ADMIN: "yes" };
    expectOneLineUsageError(
      await runCli(["master", "--generator", EXAMPLE_GENERATOR, ...node()], { env }),
      /invalid ESCHEDULER_HTTP_ADMIN "yes": use true, false, 1 or 0/,
    );
  });

  it("rejects TLS files that cannot be read", async () => {
    expectOneLineUsageError(
      await runCli(["status", "--etcd", etcd(), "--etcd-ca", join(modules, "missing-ca.pem")]),
      /cannot read --etcd-ca ".*missing-ca\.pem": ENOENT/,
    );
  });

  it("rejects TLS that etcd does not speak (a bogus CA against a plain etcd)", async () => {
    const bogusCa = join(modules, "bogus-ca.pem");
    writeFileSync(bogusCa, "not a certificate\n");
    expectOneLineUsageError(
      await runCli(["status", "--etcd", etcd(), "--etcd-ca", bogusCa, "--dial-timeout", "1s"]),
      /cannot use etcd at .*TLS/,
    );
  });

  it("rejects a worker name that a live worker holds", async () => {
    const root = uniqueRoot("cli-dup");
    const args = ["worker", "--handler", EXAMPLE_HANDLER, "--name", "twin", "--ttl", "1s"];
    const first = new CliProcess([...args, "--etcd", etcd(), "--root", root]);
    await waitFor(
      "the first twin to register",
      async () => await testClient().get(keyLayout(root).worker("twin")).exists(),
    );

    const second = await runCli([...args, "--etcd", etcd(), "--root", root, "--log-level", "silent"]);

    expectOneLineUsageError(second, /worker name "twin" is already registered by a live process/);
    expect((await first.stop()).code).toBe(0);
  });

  it("shows the stack trace only with --log-level debug", async () => {
    const debug = await runCli(["master", "--generator", numberModule, ...node(), "--log-level", "debug"]);
    expect(debug.code).toBe(2);
    expect(debug.stderr).toMatch(/^escheduler: generator module/);
    expect(debug.stderr).toMatch(/\n\s+at /);
  });

  describe("against an etcd with authentication", () => {
    let secured: EtcdMember;

    beforeAll(async () => {
      secured = await startEtcd();
      const admin = testClient([secured.hostPort]);
      await admin.role("root").create();
      await admin.user("root").create("right-password");
      await admin.user("root").addRole("root");
      // A user confined to one root: every key escheduler reads or writes is under it.
      const confined = await admin.role("confined").create();
      await confined.grant({ permission: "Readwrite", range: admin.range({ prefix: "/confined/" }) });
      await admin.user("confined").create("confined-password");
      await admin.user("confined").addRole("confined");
      await admin.auth.authEnable();
    });
    afterAll(() => secured?.destroy());

    it("rejects wrong credentials", async () => {
      const wrong = ["--etcd", secured.hostPort, "--etcd-user", "root", "--etcd-password", "wrong-password"];
      expectOneLineUsageError(await runCli(["status", ...wrong]), /authentication failed/);
      expectOneLineUsageError(
        await runCli(["worker", "--handler", EXAMPLE_HANDLER, ...wrong]),
        /authentication failed/,
      );
      const probe = await runCli(["probe", ...wrong]);
      expect(probe.code).toBe(2);
    });

    it("serves a user confined to its root, and refuses it any other root", async () => {
      const confined = [
        "--etcd",
        secured.hostPort,
        "--etcd-user",
        "confined",
        "--etcd-password",
        "confined-password",
      ];
      const own = await runCli(["status", "--json", "--root", "confined", ...confined]);
      expect({ code: own.code, stderr: own.stderr }).toEqual({ code: 0, stderr: "" });
      expectOneLineUsageError(await runCli(["status", "--root", "other", ...confined]), /permission denied/);
    });

    it("accepts the right password from ESCHEDULER_ETCD_PASSWORD", async () => {
      const result = await runCli(["status", "--json", "--etcd", secured.hostPort, "--etcd-user", "root"], {
        env: { ESCHEDULER_ETCD_PASSWORD: "right-password" },
      });
      expect(result.stderr).toBe("");
      expect(result.code).toBe(0);
      expect(JSON.parse(result.stdout)).toMatchObject({ leader: null, ready: false, workers: [] });
    });
  });
});

describe("invoked as escheduler-master or escheduler-worker", () => {
  let links: string;
  beforeAll(async () => {
    await ensureBuilt();
    links = mkdtempSync(join(tmpdir(), "escheduler-cli-links-"));
    for (const name of ["escheduler-master", "escheduler-worker"]) symlinkSync(BINARY, join(links, name));
  });
  afterAll(() => links && rmSync(links, { recursive: true, force: true }));

  it("behaves as `escheduler master` and `escheduler worker`", async () => {
    const master = await runCli(["--help"], { entry: join(links, "escheduler-master") });
    expect(master.stdout).toMatch(/^Usage: escheduler master /);
    const worker = await runCli(["--capacity", "x"], { entry: join(links, "escheduler-worker") });
    expectOneLineUsageError(worker, /--handler <module> is required/);
  });
});
