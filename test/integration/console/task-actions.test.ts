/** The console's reset and release, run as the admin actions run them (src/operator), on real etcd. */
import { describe, expect, it } from "vitest";
import { operatorActions } from "../../../src/console/index.js";
import { readAudit } from "../../../src/operator/index.js";
import { testSpace } from "../../helpers/context.js";

const since = "2026-01-01T00:00:00.000Z";

describe("task reset and release from the console", () => {
  it("are the operator's own: the failure record goes, the hold ends now, each audited as the token's label with the reason", async () => {
    const space = testSpace("console-reset-release");
    const failure = { failures: 1, error: "disk full", at: since, exhaustedAt: since };
    await space.client
      .put(space.keys.failure("poison"))
      .value(JSON.stringify({ fingerprint: "f", workers: { w1: failure, w2: failure } }));
    const until = new Date(Date.now() + 3_600_000).toISOString();
    await space.client.put(space.keys.held("w3")).value(JSON.stringify({ since, until }));
    const run = operatorActions(space.client, space.root, "alice@console");

    const reset = await run("reset", { task: "poison", reason: "fixed the disk" });
    const released = await run("release", { worker: "w3", reason: "w3 is not coming back" });

    expect(reset).toMatchObject({ task: "poison", reset: true });
    expect(await space.client.get(space.keys.failure("poison")).string()).toBeNull();
    expect(released).toMatchObject({ worker: "w3", released: true, held: { until } });
    const hold = JSON.parse((await space.client.get(space.keys.held("w3")).string()) ?? "{}");
    expect(hold).toMatchObject({ releasedBy: "alice@console", reason: "w3 is not coming back" });
    expect(Date.parse(hold.until)).toBeLessThanOrEqual(Date.now());
    const audit = await readAudit(space.client, space.keys);
    expect(
      audit.map(({ action, task, worker, by, reason }) => ({ action, task, worker, by, reason })),
    ).toEqual([
      {
        action: "task reset",
        task: "poison",
        worker: undefined,
        by: "alice@console",
        reason: "fixed the disk",
      },
      {
        action: "release",
        task: undefined,
        worker: "w3",
        by: "alice@console",
        reason: "w3 is not coming back",
      },
    ]);
    await expect(run("reset", {})).rejects.toMatchObject({ code: "ERR_CONFIG" });
    await expect(run("release", {})).rejects.toMatchObject({ code: "ERR_CONFIG" });
  });
});
