import { describe, expect, it } from "vitest";
import { waitFor } from "../../helpers/context.js";
import { twoWorkers } from "./fixtures.js";

/**
 * A run lock (`/R/run/<task>`) deleted or forged by hand. The workers' lease TTL is 2 s, so a worker
 * audits the keys under its lease every second (TTL / 2): the bounds below are that interval plus
 * round trips and a stop, with slack for a loaded machine.
 */
const TTL_MS = 2_000;
const AUDIT_BOUND_MS = TTL_MS / 2 + 2_000;
/** A lock under a lease that its claims did not take is deleted when two audits in a row find it. */
const TWO_AUDITS_BOUND_MS = TTL_MS + 2_000;
const FORGED = "forged run lock removed";

describe("a run lock deleted by hand", () => {
  it("while a second copy waits on it: the task stays on its holder alone, whose lock is back within the audit interval", async () => {
    const { client, keys, record, putTask, statusOf } = await twoWorkers(TTL_MS, "lock-deleted");
    await putTask("w1", "t");
    await waitFor("t to run on w1", async () => (await client.get(keys.runLock("t")).string()) === "w1");
    await putTask("w2", "t");
    const refused = await waitFor("w2's copy to be refused", async () => {
      const status = await statusOf("w2", "t");
      return status?.state === "failed" ? status : undefined;
    });

    const deletedAt = Date.now();
    await client.delete().key(keys.runLock("t"));
    // w2 hears of the deletion and claims again: refused while w1 still reports the task.
    await waitFor(
      "w2 to claim again",
      async () => ((await statusOf("w2", "t"))?.attempt ?? 0) > refused.attempt,
    );
    const holder = await waitFor(
      "the lock to be held again",
      () => client.get(keys.runLock("t")).string(),
      AUDIT_BOUND_MS,
    );
    const retakenInMs = Date.now() - deletedAt;

    expect(record.mostAtOnce).toBe(1);
    expect(holder).toBe("w1");
    expect(record.startedOn("t")).toEqual(["w1"]);
    expect(record.runsOn("t")).toEqual(["w1"]);
    expect((await statusOf("w1", "t"))?.state).toBe("running");
    expect((await statusOf("w2", "t"))?.error).toContain('"w1"');
    expect(retakenInMs).toBeLessThan(AUDIT_BOUND_MS);
  });

  it("then a copy written elsewhere (no claim knew the holder): two run for at most the audit interval, then one", async () => {
    const { client, keys, record, putTask, statusOf } = await twoWorkers(TTL_MS, "lock-deleted-fresh");
    await putTask("w1", "t");
    await waitFor("t to run on w1", async () => (await client.get(keys.runLock("t")).string()) === "w1");

    await client.delete().key(keys.runLock("t"));
    await putTask("w2", "t");
    await waitFor(
      "t to run on one worker only",
      () => record.runsOn("t").length === 1 && record.mostAtOnce === 2,
      AUDIT_BOUND_MS + 5_000,
    );

    const started = record.events.find((e) => e.worker === "w2" && e.event === "start");
    const stopped = record.events.find((e) => e.worker === "w1" && e.event === "stop");
    expect(record.runsOn("t")).toEqual(["w2"]);
    expect((stopped?.at ?? Infinity) - (started?.at ?? 0)).toBeLessThan(AUDIT_BOUND_MS);
    expect(await client.get(keys.runLock("t")).string()).toBe("w2");
    await waitFor("w1 to show who holds the lock", async () =>
      (await statusOf("w1", "t"))?.error?.includes('run lock held by worker "w2"'),
    );
  });
});

describe("a run lock forged by hand", () => {
  it("under a live worker's lease, for a task that worker does not run: the task starts on its assigned worker, one warning names the key", async () => {
    const { client, keys, record, putTask, leaseOf, warnings } = await twoWorkers(TTL_MS, "lock-forged");
    await client
      .put(keys.runLock("x"))
      .value("w2")
      .lease(await leaseOf("w2"));

    const assignedAt = Date.now();
    await putTask("w1", "x");
    await waitFor("x to run on w1", () => record.runsOn("x")[0] === "w1", AUDIT_BOUND_MS);

    expect(Date.now() - assignedAt).toBeLessThan(AUDIT_BOUND_MS);
    expect(record.startedOn("x")).toEqual(["w1"]);
    expect(await client.get(keys.runLock("x")).string()).toBe("w1");
    expect(warnings(FORGED)).toEqual([expect.objectContaining({ key: keys.runLock("x") })]);
  });

  it("naming a worker other than its lease's owner: not trusted, the named worker itself starts the task", async () => {
    const { client, keys, record, putTask, leaseOf, warnings } = await twoWorkers(TTL_MS, "lock-misnamed");
    await client
      .put(keys.runLock("x"))
      .value("w1")
      .lease(await leaseOf("w2"));

    await putTask("w1", "x");
    await waitFor("x to run on w1", () => record.runsOn("x")[0] === "w1", AUDIT_BOUND_MS);

    expect(await client.get(keys.runLock("x")).string()).toBe("w1");
    expect(warnings(FORGED)).toEqual([expect.objectContaining({ key: keys.runLock("x") })]);
  });

  it("under a worker's lease for a task nobody is assigned: that worker's audit removes it within two intervals", async () => {
    const { client, keys, leaseOf, warnings } = await twoWorkers(TTL_MS, "lock-forged-idle");
    await client
      .put(keys.runLock("x"))
      .value("w2")
      .lease(await leaseOf("w2"));
    const forgedAt = Date.now();

    await waitFor(
      "the forged lock to go",
      async () => (await client.get(keys.runLock("x")).string()) === null,
      TWO_AUDITS_BOUND_MS,
    );

    expect(Date.now() - forgedAt).toBeLessThan(TWO_AUDITS_BOUND_MS);
    await waitFor("the warning", () => warnings(FORGED).length > 0);
    expect(warnings(FORGED)).toEqual([expect.objectContaining({ key: keys.runLock("x") })]);
  });
});
