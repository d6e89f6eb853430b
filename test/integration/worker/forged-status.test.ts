import { describe, expect, it } from "vitest";
import { waitFor } from "../../helpers/context.js";
import { storedStatuses, twoWorkers } from "./fixtures.js";

/**
 * A task status (`/R/status/<worker>/<task>`) forged by hand under a live worker's lease, for a task
 * that worker was never given: until it goes, a hand-off waits for that "copy" to stop, and a claim
 * elsewhere honours a forged run lock beside it. The workers' lease TTL is 2 s, so a worker audits
 * the keys under its lease every second; a key it did not write, seen at two audits in a row, goes.
 */
const TTL_MS = 2_000;
const TWO_AUDITS_BOUND_MS = TTL_MS + 2_000;
const FORGED_STATUS = "forged task status removed";
const running = (): string =>
  JSON.stringify({ state: "running", attempt: 1, since: new Date().toISOString() });

describe("a task status forged under a live worker's lease", () => {
  it("for a task nobody is assigned: that worker's audit removes it within two intervals, one warning names the key", async () => {
    const { client, keys, leaseOf, warnings } = await twoWorkers(TTL_MS, "status-forged-idle");
    await client
      .put(keys.status("w1", "x"))
      .value(running())
      .lease(await leaseOf("w1"));
    const forgedAt = Date.now();

    await waitFor(
      "the forged status to go",
      async () => (await client.get(keys.status("w1", "x")).string()) === null,
      TWO_AUDITS_BOUND_MS + 5_000,
    );

    expect(Date.now() - forgedAt).toBeLessThan(TWO_AUDITS_BOUND_MS);
    await waitFor("the warning", () => warnings(FORGED_STATUS).length > 0);
    expect(warnings(FORGED_STATUS)).toEqual([expect.objectContaining({ key: keys.status("w1", "x") })]);
  });

  it("with a run lock beside it, for a task then assigned elsewhere: the task starts on its assigned worker", async () => {
    const { client, keys, record, putTask, leaseOf, warnings } = await twoWorkers(
      TTL_MS,
      "status-lock-forged",
    );
    const lease = await leaseOf("w1");
    await client.put(keys.runLock("x")).value("w1").lease(lease);
    await client.put(keys.status("w1", "x")).value(running()).lease(lease);

    await putTask("w2", "x");
    await waitFor("x to run on w2", () => record.runsOn("x")[0] === "w2", 2 * TWO_AUDITS_BOUND_MS + 5_000);

    expect(record.startedOn("x")).toEqual(["w2"]);
    expect(await client.get(keys.runLock("x")).string()).toBe("w2");
    expect(await client.get(keys.status("w1", "x")).string()).toBeNull();
    expect(warnings(FORGED_STATUS)).toEqual([expect.objectContaining({ key: keys.status("w1", "x") })]);
  });

  it("naming another worker: the lease's owner removes it all the same", async () => {
    const { client, keys, leaseOf, warnings } = await twoWorkers(TTL_MS, "status-forged-misnamed");
    await client
      .put(keys.status("w2", "x"))
      .value(running())
      .lease(await leaseOf("w1"));

    await waitFor(
      "the forged status to go",
      async () => (await client.get(keys.status("w2", "x")).string()) === null,
      TWO_AUDITS_BOUND_MS + 5_000,
    );
    await waitFor("the warning", () => warnings(FORGED_STATUS).length > 0);
    expect(warnings(FORGED_STATUS)).toEqual([expect.objectContaining({ key: keys.status("w2", "x") })]);
  });
});

describe("the statuses a worker writes itself", () => {
  it("stay through many audits while tasks start, stop and are refused; no status is reported forged", async () => {
    const { client, keys, record, putTask, statusOf, warnings } = await twoWorkers(TTL_MS, "status-genuine");
    await putTask("w1", "held");
    await waitFor("held to run on w1", () => record.runsOn("held")[0] === "w1");
    // A copy refused by the run lock keeps a `failed` status without holding the lock.
    await putTask("w2", "held");
    await waitFor("w2's copy to be refused", async () => (await statusOf("w2", "held"))?.state === "failed");

    // Tasks come and go on both workers across several audits.
    const until = Date.now() + 2 * TTL_MS;
    for (let round = 0; Date.now() < until; round++) {
      const worker = round % 2 === 0 ? "w1" : "w2";
      await putTask(worker, `c${round}`);
      if (round >= 2) await client.delete().key(keys.task(round % 2 === 0 ? "w1" : "w2", `c${round - 2}`));
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await new Promise((resolve) => setTimeout(resolve, TTL_MS));

    expect(warnings(FORGED_STATUS)).toEqual([]);
    expect((await statusOf("w1", "held"))?.state).toBe("running");
    expect((await statusOf("w2", "held"))?.state).toBe("failed");
    expect(await client.get(keys.runLock("held")).string()).toBe("w1");
    expect(record.mostAtOnce).toBe(1);
    for (const worker of ["w1", "w2"]) {
      const tasks = Object.keys(await client.getAll().prefix(keys.workerTasksPrefix(worker)).strings());
      const ids = tasks.map((key) => keys.parseTask(key)?.taskId);
      await waitFor(`${worker}'s statuses to match its tasks`, async () => {
        const statuses = [...(await storedStatuses(client, keys, worker)).keys()];
        return statuses.sort().join() === ids.sort().join();
      });
    }
  });
});
