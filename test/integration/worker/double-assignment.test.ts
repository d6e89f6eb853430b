import { describe, expect, it } from "vitest";
import { testSpace, waitFor } from "../../helpers/context.js";
import { SharedRecord, storedStatuses, testWorker } from "./fixtures.js";

describe("a task assigned to two workers at once (a script writing straight into etcd)", () => {
  it("runs on exactly one of them; the other shows who holds the run lock, and starts it once that copy is removed", async () => {
    const { client, keys, root } = testSpace("double");
    const record = new SharedRecord();
    const workers = ["w1", "w2"].map((name) =>
      testWorker({
        root,
        name,
        handler: record.handler(name),
        startRetry: { initialMs: 60_000, maxMs: 60_000 },
      }),
    );
    await Promise.all(workers.map((worker) => worker.start()));
    const task = JSON.stringify({ id: "t", payload: 1 });

    // Both copies land in one revision, so both workers race for the start.
    await client
      .if(keys.task("w1", "t"), "Create", "==", 0)
      .then(client.put(keys.task("w1", "t")).value(task), client.put(keys.task("w2", "t")).value(task))
      .commit();
    const holder = await waitFor("one worker to run t", () => record.runsOn("t")[0]);
    const other = holder === "w1" ? "w2" : "w1";
    const settled = await waitFor("the other worker's status to settle", async () => {
      const status = (await storedStatuses(client, keys, other)).get("t");
      return status?.state === "failed" || status?.state === "running" ? status : undefined;
    });

    expect(record.startedOn("t")).toEqual([holder]);
    expect(record.mostAtOnce).toBe(1);
    expect(settled).toMatchObject({
      state: "failed",
      error: `run lock held by worker "${holder}": the task runs there`,
    });
    expect(await client.get(keys.runLock("t")).string()).toBe(holder);

    // The holder's copy goes: it stops there, and the other worker starts it at once (not after
    // its 60 s retry backoff), never both at the same time.
    await client.delete().key(keys.task(holder, "t"));
    await waitFor("t to run on the other worker", () => record.runsOn("t")[0] === other);

    expect(record.mostAtOnce).toBe(1);
    expect(record.events.map(({ worker, task, event }) => ({ worker, task, event }))).toEqual([
      { worker: holder, task: "t", event: "start" },
      { worker: holder, task: "t", event: "stop" },
      { worker: other, task: "t", event: "start" },
    ]);
    expect(await client.get(keys.runLock("t")).string()).toBe(other);
    await waitFor("the other worker's status to say running", async () => {
      return (await storedStatuses(client, keys, other)).get("t")?.state === "running";
    });
  });
});
