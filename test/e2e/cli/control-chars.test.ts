/**
 * `status` and `history` (the real binary, human output) over records a script wrote straight into
 * etcd with terminal control characters in them: none reaches the terminal; each shows escaped.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { keyLayout } from "../../../src/node/index.js";
import { ensureBuilt, runCli } from "../../helpers/cli.js";
import { etcdEndpoints, testClient, uniqueRoot } from "../../helpers/context.js";

const since = "2026-01-01T00:00:00.000Z";
/** Bytes a terminal acts on, but the newline that ends each line: C0 controls, DEL, C1 controls. */
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;
const CLEAR = "\u001b[2J";
const TITLE = "\u001b]0;pwned\u0007";

describe("status and history over records with control characters", () => {
  beforeAll(async () => {
    await ensureBuilt();
  }, 180_000);

  it("print no raw control character, and show each escaped", async () => {
    const root = uniqueRoot("control-chars");
    const keys = keyLayout(root);
    const client = testClient();
    const { ID: lease } = await client.leaseClient.leaseGrant({ TTL: 60 });
    const put = (key: string, value: unknown, leased = false) =>
      client.kv.put({
        key: Buffer.from(key),
        value: Buffer.from(typeof value === "string" ? value : JSON.stringify(value)),
        ...(leased ? { lease } : {}),
      });
    const registration = { name: "w1", host: `h${CLEAR}`, pid: 1, version: `v${TITLE}`, startedAt: since };
    await put(keys.worker("w1"), registration, true);
    await put(keys.task("w1", "t1"), { id: "t1" });
    const status = { state: "failed", attempt: 1, since, error: `boom${CLEAR}\nforged line` };
    await put(keys.status("w1", "t1"), status, true);
    await put(keys.barrierLeft, since);
    await put(keys.plan, { epoch: 1, leader: `m1${CLEAR}`, at: since, workers: ["w1"], tasks: 1, moved: 0 });
    await put(keys.paused, { by: `${CLEAR}evil`, reason: "\u001b[5mblink", at: since });
    await put(keys.cordon("w1"), { mode: "cordon", reason: `r\u0000${TITLE}`, by: "\u009b31m", at: since });
    const action = {
      at: since,
      action: "task move",
      by: TITLE + CLEAR,
      task: "t1",
      to: "\u0000x",
      reason: "\u001b[31mred",
    };
    await put(keys.audit(Date.parse(since) + 1, "bb"), action);
    const schedule = {
      at: since,
      leader: `m1${TITLE}`,
      epoch: 1,
      outcome: "applied",
      reasons: [`request by ${CLEAR}`],
      workers: ["w1"],
      tasks: 1,
      added: 1,
      removed: 0,
      moved: 0,
      unassigned: 0,
      moves: [],
    };
    await put(keys.history(2), schedule);

    const connection = ["--etcd", etcdEndpoints().join(","), "--root", root, "--dial-timeout", "10s"];
    const [statusRun, historyRun] = await Promise.all([
      runCli(["status", ...connection]),
      runCli(["history", ...connection]),
    ]);

    expect(statusRun.code, statusRun.stderr).toBe(0);
    expect(historyRun.code, historyRun.stderr).toBe(0);
    for (const run of [statusRun, historyRun]) expect(run.stdout).not.toMatch(RAW_CONTROL);
    expect(statusRun.stdout).toContain("\\x1b[2Jevil");
    expect(statusRun.stdout).toContain("\\x1b[5mblink");
    expect(historyRun.stdout).toContain("\\x1b]0;pwned\\x07\\x1b[2J");
    expect(historyRun.stdout).toContain("\\x1b[31mred");
    expect(historyRun.stdout).toContain("request by \\x1b[2J");
  });
});
