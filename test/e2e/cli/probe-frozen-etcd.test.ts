import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CliProcess, ensureBuilt } from "../../helpers/cli.js";
import { type EtcdMember, startEtcd } from "../../helpers/etcd.js";

/**
 * A probe against an etcd that accepts connections but answers nothing (the process stopped, e.g. a
 * frozen VM) decides "cannot tell" after its dial timeout and must exit then: a Kubernetes exec probe
 * counts the process's life, not the moment it printed its answer.
 */
describe("escheduler probe against an etcd that stopped answering", () => {
  let etcd: EtcdMember;

  beforeAll(async () => {
    await ensureBuilt();
    etcd = await startEtcd();
  });
  afterAll(async () => {
    if (etcd?.process?.pid) process.kill(etcd.process.pid, "SIGCONT");
    await etcd?.destroy();
  });

  it("exits 2 as soon as it has said it cannot tell", async () => {
    process.kill(etcd.process?.pid as number, "SIGSTOP");
    const probe = new CliProcess(["probe", "--etcd", etcd.hostPort]);
    await probe.waitForOutput(/cannot use etcd/, 30_000);
    const printedAt = Date.now();
    const exit = await probe.exited;
    expect(exit.code).toBe(2);
    expect(exit.stderr.trim().split("\n")).toEqual([
      expect.stringMatching(/^escheduler: cannot use etcd at .*no answer within 700ms/),
    ]);
    // Before: an open read kept the process until bin/escheduler.js's fallback exit, 3 s after the answer (1.1 s and more measured).
    expect(exit.exitedAt - printedAt).toBeLessThan(500);
  });
});
