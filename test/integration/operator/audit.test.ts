import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { readStatus } from "../../../src/cli/status.js";
import type { Logger } from "../../../src/node/index.js";
import { adminLabel, operatorActions } from "../../../src/console/admin.js";
import { auditOps } from "../../../src/operator/audit.js";
import {
  cordon,
  defaultActor,
  drain,
  pause,
  pinTask,
  readAudit,
  readControls,
  readPaused,
  resume,
  uncordon,
  unpinTask,
} from "../../../src/operator/index.js";
import { testSpace } from "../../helpers/context.js";

function recordingLogger(): { logger: Logger; warnings: Array<Record<string, unknown>> } {
  const warnings: Array<Record<string, unknown>> = [];
  const logger = pino(
    { level: "warn" },
    { write: (line: string) => void warnings.push(JSON.parse(line) as Record<string, unknown>) },
  );
  return { logger, warnings };
}

describe("the audit trail", () => {
  it("every operator action records who and why, in its key and in /R/audit/, in order", async () => {
    const { client, root, keys } = testSpace("audit");
    await client.put(keys.worker("w1")).value("{}");
    await cordon(client, root, "w1", { by: "alice@ops", reason: "disk" });
    await drain(client, root, "w1", { by: "alice@ops" });
    await uncordon(client, root, "w1", { by: "bob", reason: "fixed" });
    await pause(client, root, { by: "alice@ops", reason: "incident 4711" });
    await resume(client, root, { reason: "over" });
    await pinTask(client, root, "t1", "w1", { by: "carol", reason: "debug" });
    await unpinTask(client, root, "t1", { by: "carol" });
    // Nothing to unpin: no action, no record.
    await unpinTask(client, root, "t1", { by: "carol" });

    const trail = await readAudit(client, keys);
    expect(
      trail.map(({ action, by, reason, worker, task, to }) => ({ action, by, reason, worker, task, to })),
    ).toEqual([
      { action: "cordon", by: "alice@ops", reason: "disk", worker: "w1" },
      { action: "drain", by: "alice@ops", worker: "w1" },
      { action: "uncordon", by: "bob", reason: "fixed", worker: "w1" },
      { action: "pause", by: "alice@ops", reason: "incident 4711" },
      { action: "resume", by: defaultActor(), reason: "over" },
      { action: "task pin", by: "carol", reason: "debug", task: "t1", to: "w1" },
      { action: "task unpin", by: "carol", task: "t1" },
    ]);
    expect(defaultActor()).toMatch(/^.+@.+$/);
    expect(await readAudit(client, keys, { task: "t1", limit: 1 })).toEqual([
      expect.objectContaining({ action: "task unpin" }),
    ]);

    await pause(client, root, { by: "alice@ops", reason: "incident 4711" });
    expect(await readPaused(client, root)).toMatchObject({ by: "alice@ops", reason: "incident 4711" });
    await cordon(client, root, "w1", { by: "dave", reason: "noisy" });
    expect((await readControls(client, root)).cordons.records.get("w1")).toMatchObject({
      mode: "cordon",
      by: "dave",
      reason: "noisy",
    });
  });

  it("console actions are recorded as the admin token's label (ESCHEDULER_ADMIN_TOKEN_LABEL, default console)", async () => {
    const { client, root, keys } = testSpace("audit-console");
    await client.put(keys.worker("w1")).value("{}");
    expect(adminLabel({})).toBe("console");
    const run = operatorActions(client, root, adminLabel({ ESCHEDULER_ADMIN_TOKEN_LABEL: " oncall " }));
    await run("cordon", { worker: "w1", reason: "disk" });
    await run("pin", { task: "t1", worker: "w1" });
    await expect(run("unpin", { worker: "w1" })).rejects.toMatchObject({ code: "ERR_CONFIG" });
    expect((await readControls(client, root)).cordons.records.get("w1")).toMatchObject({
      by: "oncall",
      reason: "disk",
    });
    expect((await readAudit(client, keys)).map((entry) => `${entry.action} ${entry.by}`)).toEqual([
      "cordon oncall",
      "task pin oncall",
    ]);
  });

  it("keeps the newest records, trimming the oldest in the transaction that adds one", async () => {
    const { client, keys } = testSpace("audit-trim");
    for (let n = 0; n < 5; n++) {
      const ops = await auditOps(
        client,
        keys,
        { at: new Date(Date.UTC(2026, 0, 1, 0, n)).toISOString(), action: "pause", by: `u${n}` },
        3,
      );
      await client.kv.txn({ compare: [], success: ops, failure: [] });
    }
    expect((await readAudit(client, keys)).map((entry) => entry.by)).toEqual(["u2", "u3", "u4"]);
  });

  it("records written before the audit trail (no by) read as before; a bad audit record is skipped with one warning", async () => {
    const { client, root, keys } = testSpace("audit-old");
    await client.put(keys.worker("w1")).value("{}");
    await client
      .put(keys.cordon("w1"))
      .value(JSON.stringify({ mode: "cordon", reason: "old", at: "2026-01-01T00:00:00Z" }));
    await client.put(keys.paused).value(JSON.stringify({ reason: "old pause", at: "2026-01-01T00:00:00Z" }));
    const bad = keys.audit(Date.UTC(2026, 0, 1), "ab");
    await client.put(bad).value('{"action":5}');
    await client.put(`${keys.auditPrefix}not-an-audit-key`).value("{}");
    const { logger, warnings } = recordingLogger();

    const { report } = await readStatus(client, root, logger);
    expect(report.paused).toEqual({ reason: "old pause", at: "2026-01-01T00:00:00Z" });
    expect((await readControls(client, root)).cordons.records.get("w1")).toEqual({
      mode: "cordon",
      reason: "old",
      at: "2026-01-01T00:00:00Z",
    });
    expect(await readAudit(client, keys, { logger })).toEqual([]);
    expect(await readAudit(client, keys, { logger })).toEqual([]);
    expect(warnings.filter((warning) => warning.key === bad)).toHaveLength(1);
  });
});
