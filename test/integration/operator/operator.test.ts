import { describe, expect, it } from "vitest";
import type { HistoryRecord, ScheduleRequestRecord } from "../../../src/node/index.js";
import { LeaseSession } from "../../../src/node/lease-session.js";
import { answerScheduleRequest } from "../../../src/master/requests.js";
import {
  cordon,
  drain,
  pause,
  readControls,
  readHistory,
  readPaused,
  requestSchedule,
  resume,
  uncordon,
} from "../../../src/operator/index.js";
import { PrefixWatcher } from "../../../src/watcher/index.js";
import { testSpace, waitFor } from "../../helpers/context.js";

describe("operator actions", () => {
  it("pause stores the reason until resume removes it", async () => {
    const { client, root } = testSpace("pause");
    expect(await readPaused(client, root)).toBeUndefined();
    await pause(client, root, { reason: "incident 42" });
    expect(await readPaused(client, root)).toMatchObject({ reason: "incident 42" });
    expect(await resume(client, root)).toBe(true);
    expect(await readPaused(client, root)).toBeUndefined();
    expect(await resume(client, root)).toBe(false);
  });

  it("cordons and drains only registered workers; uncordon removes either", async () => {
    const { client, root, keys } = testSpace("cordon");
    await client.put(keys.worker("w1")).value("{}");
    await client.put(keys.worker("w2")).value("{}");

    await expect(cordon(client, root, "ghost")).rejects.toMatchObject({ code: "ERR_UNKNOWN_WORKER" });
    await expect(drain(client, root, "a/b")).rejects.toMatchObject({ code: "ERR_BAD_NAME" });
    expect(await client.getAll().prefix(keys.cordonsPrefix).keys()).toEqual([]);

    await cordon(client, root, "w1", { reason: "disk" });
    await drain(client, root, "w2");
    // A worker's own draining mark lives under its lease (one without is not trusted).
    const { ID: lease } = await client.leaseClient.leaseGrant({ TTL: 60 });
    await client.kv.put({ key: Buffer.from(keys.draining("w3")), value: Buffer.from("{}"), lease });
    const { cordons } = await readControls(client, root);
    expect(cordons.records.get("w1")).toMatchObject({ mode: "cordon", reason: "disk" });
    expect(cordons.records.get("w2")).toMatchObject({ mode: "drain" });
    expect([...cordons.draining]).toEqual(["w3"]);

    expect(await uncordon(client, root, "w1")).toMatchObject({ mode: "cordon" });
    expect(await uncordon(client, root, "w1")).toBeUndefined();
    // A drained worker that has since left can still be uncordoned; a name never seen cannot.
    await client.delete().key(keys.worker("w2"));
    expect(await uncordon(client, root, "w2")).toMatchObject({ mode: "drain" });
    await expect(uncordon(client, root, "w2")).rejects.toMatchObject({ code: "ERR_UNKNOWN_WORKER" });
    expect((await readControls(client, root)).cordons.records.size).toBe(0);
  });

  it("a schedule request resolves with the leader's answer and leaves no key behind", async () => {
    const { client, root, keys } = testSpace("request");
    const leader = new PrefixWatcher(client, keys.requestsPrefix);
    await leader.start();
    const seen: ScheduleRequestRecord[] = [];
    leader.on("change", (change) => {
      if (change.type !== "put") return;
      const request = JSON.parse(change.value) as ScheduleRequestRecord;
      if (request.outcome) return;
      seen.push(request);
      void answerScheduleRequest(client, change.key, request, { state: "refused", reason: "paused" });
    });
    try {
      const outcome = await requestSchedule(client, root, {
        reason: "deploy",
        allowRemoval: true,
        timeoutMs: 5_000,
      });
      expect(outcome).toEqual({ state: "refused", reason: "paused" });
      expect(seen).toEqual([expect.objectContaining({ reason: "deploy", allowRemoval: true })]);
      await waitFor(
        "the request key deleted",
        async () => (await client.getAll().prefix(keys.requestsPrefix).keys()).length === 0,
      );
    } finally {
      await leader.close();
    }
  });

  it("a schedule request nobody answers fails with ERR_NO_LEADER after its timeout", async () => {
    const { client, root, keys } = testSpace("noleader");
    const startedAt = Date.now();
    await expect(requestSchedule(client, root, { timeoutMs: 300 })).rejects.toMatchObject({
      code: "ERR_NO_LEADER",
    });
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(290);
    expect(await client.getAll().prefix(keys.requestsPrefix).keys()).toEqual([]);
  });

  it("the leader's answer to a request that was given up writes nothing", async () => {
    const { client, keys } = testSpace("late");
    const key = keys.request("gone");
    await answerScheduleRequest(client, key, { allowRemoval: false, at: "" }, { state: "applied" });
    expect(await client.get(key).string()).toBeNull();
  });

  it("history lists the newest records oldest first, bounded by --limit and filtered by task", async () => {
    const { client, root, keys } = testSpace("history");
    const record = (n: number, moved: string[]): HistoryRecord => ({
      at: new Date(Date.UTC(2026, 0, 1, 0, n)).toISOString(),
      leader: "m1",
      epoch: 1,
      outcome: "applied",
      reasons: ["interval"],
      workers: ["w1", "w2"],
      tasks: 10,
      added: 0,
      removed: 0,
      moved: moved.length,
      unassigned: 0,
      moves: moved.map((id) => ({ id, from: "w1", to: "w2" })),
    });
    for (let n = 1; n <= 5; n++) {
      await client.put(keys.history(n * 100)).value(JSON.stringify(record(n, n % 2 ? ["t1"] : ["t2"])));
    }
    expect((await readHistory(client, root, { limit: 2 })).map((e) => e.revision)).toEqual([400, 500]);
    expect((await readHistory(client, root)).length).toBe(5);
    expect((await readHistory(client, root, { task: "t1" })).map((e) => e.revision)).toEqual([100, 300, 500]);
    expect((await readHistory(client, root, { task: "t1", limit: 1 })).map((e) => e.revision)).toEqual([500]);
    await expect(readHistory(client, root, { limit: 0 })).rejects.toMatchObject({ code: "ERR_CONFIG" });
  });
});
