import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import type { Master } from "../../../src/master/index.js";
import { createEtcdClient, type Logger, type Task } from "../../../src/node/index.js";
import { pause } from "../../../src/operator/index.js";
import { testSpace, waitFor } from "../../helpers/context.js";
import { TcpProxy } from "../../helpers/tcp-proxy.js";
import { assignment, FakeWorker, StatusRecorder, tasks, testMaster } from "./fixtures.js";

type Space = ReturnType<typeof testSpace>;
/** How the new leader's schedules fail to apply: refused by the guard, paused, or a generator error. */
type Refusal = "guard" | "paused" | "generator";

const proxies: TcpProxy[] = [];
afterEach(async () => {
  for (const proxy of proxies.splice(0)) await proxy.stop();
});

async function tasksOn(space: Space, worker: string): Promise<string[]> {
  const placed = await assignment(space.client, space.keys);
  return [...placed].filter(([, owner]) => owner === worker).map(([id]) => id);
}

/** task id → workers reporting a status for it. */
async function statusOwners(space: Space): Promise<Map<string, string[]>> {
  const owners = new Map<string, string[]>();
  for (const key of await space.client.getAll().prefix(space.keys.statusPrefix).keys()) {
    const parts = space.keys.parseStatus(key);
    if (parts) owners.set(parts.taskId, [...(owners.get(parts.taskId) ?? []), parts.worker]);
  }
  return owners;
}

/**
 * Leader a (behind a proxy, so it can die without a word: nothing more of it reaches etcd and its lease
 * expires, as after SIGKILL) places four tasks on w1, whose stops wait for the test; w2 joins and two
 * tasks start moving (removed from w1). Then a dies; b is the standby. `generate` decides both masters'
 * tasks.
 */
async function leaderDiesMidHandoff(label: string, generate: () => Task[]) {
  const space = testSpace(label);
  const [host, port] = space.endpoints[0].split(":");
  const proxy = new TcpProxy({ host, port: Number(port) });
  proxies.push(proxy);
  await proxy.start();
  const doomed = createEtcdClient({ etcd: [proxy.hostPort], dialTimeout: 1_000 });
  // Long worker leases: a loaded machine must not take a worker away mid-test.
  const w1 = await FakeWorker.start(space.client, space.keys, "w1", { manualStop: true, ttlMs: 10_000 });
  const options = { handoff: "wait" as const, maxMoving: 4, ttlMs: 2_000 };
  const a = testMaster(space, generate, { ...options, name: "a", client: doomed });
  await a.start();
  await waitFor("a to lead", () => a.isLeader);
  await waitFor("four tasks on w1", async () => (await tasksOn(space, "w1")).length === 4);
  const b = testMaster(space, generate, { ...options, name: "b" });
  await b.start();
  const recorder = new StatusRecorder(space.client, space.keys);
  await recorder.start();
  const w2 = await FakeWorker.start(space.client, space.keys, "w2", { ttlMs: 10_000 });
  await waitFor("w1 asked to stop two tasks", () => w1.stopping.length === 2);
  const moving = w1.stopping;
  expect((await assignment(space.client, space.keys)).size).toBe(2);
  proxy.partition();
  return { space, a, b, w1, w2, recorder, moving, doomed };
}

/** Resolves once `b` leads and its first schedule failed to apply in the way `refusal` names. */
function firstScheduleRefused(b: Master, refusal: Refusal): Promise<void> {
  return new Promise((resolve) => {
    if (refusal === "paused") b.once("paused", () => resolve());
    else
      b.on("scheduleFailed", (event) => {
        if (event.reason === (refusal === "guard" ? "removal_guard" : "ERR_GENERATOR")) resolve();
      });
  });
}

describe("a move begun by a leader that dies finishes under the next leader (issue 19)", () => {
  it.each<Refusal>(["guard", "paused", "generator"])(
    "the next leader's schedules fail to apply (%s): the moving tasks are written to w2 once w1 stops them, and run once",
    async (refusal) => {
      let mode: "normal" | Refusal = "normal";
      const generate = (): Task[] => {
        if (mode === "guard") return [];
        if (mode === "generator") throw new Error("inventory service down");
        return tasks(4);
      };
      const { space, b, w1, recorder, moving, doomed } = await leaderDiesMidHandoff(
        `failover-${refusal}`,
        generate,
      );
      try {
        const refused = firstScheduleRefused(b, refusal);
        if (refusal === "paused") await pause(space.client, space.root, { reason: "incident" });
        else mode = refusal;
        await waitFor("b to lead", () => b.isLeader, 10_000);
        await refused;

        for (const id of moving) w1.release(id);
        await waitFor(
          "the moving tasks written to w2",
          async () => (await tasksOn(space, "w2")).length === 2,
          5_000,
        );
        expect([...(await tasksOn(space, "w2"))].sort()).toEqual([...moving].sort());
        expect((await tasksOn(space, "w1")).length).toBe(2);
        await waitFor(
          "every task reported by one worker",
          async () => (await statusOwners(space)).size === 4,
        );
        for (const owners of (await statusOwners(space)).values()) expect(owners).toHaveLength(1);
        expect(recorder.overlaps).toEqual([]);
        // The hand-off is finished: nothing is left to resume.
        expect(await space.client.getAll().prefix(space.keys.movesPrefix).keys()).toEqual([]);
      } finally {
        doomed.close();
      }
    },
  );

  it("a move whose target is gone is not completed there; the next applied schedule places it", async () => {
    let mode: "normal" | "guard" = "normal";
    const generate = (): Task[] => (mode === "guard" ? [] : tasks(4));
    const { space, b, w1, w2, moving, doomed } = await leaderDiesMidHandoff("failover-target-gone", generate);
    try {
      mode = "guard";
      const refused = firstScheduleRefused(b, "guard");
      await w2.stop();
      await waitFor("b to lead", () => b.isLeader, 10_000);
      await refused;
      for (const id of moving) w1.release(id);
      await waitFor("w1 stopped the moving tasks", async () => (await statusOwners(space)).size === 2);
      // b holds the moves: w2 is gone, so they stay unwritten (a schedule re-targets them).
      expect(await tasksOn(space, "w2")).toEqual([]);
      expect((await space.client.getAll().prefix(space.keys.movesPrefix).keys()).length).toBe(2);

      mode = "normal";
      await b.scheduleNow("generator recovered");
      await waitFor("all four on w1 again", async () => (await tasksOn(space, "w1")).length === 4, 5_000);
      expect(await tasksOn(space, "w2")).toEqual([]);
      expect(await space.client.getAll().prefix(space.keys.movesPrefix).keys()).toEqual([]);
    } finally {
      doomed.close();
    }
  });

  it("a new leader finishes a recorded move and skips records written by hand that are not moves, one warning each", async () => {
    const space = testSpace("failover-hostile");
    const warnings: Array<Record<string, unknown>> = [];
    const logger: Logger = pino(
      { level: "warn" },
      { write: (line: string) => void warnings.push(JSON.parse(line) as Record<string, unknown>) },
    );
    await FakeWorker.start(space.client, space.keys, "w1", { ttlMs: 10_000 });
    // Not a first start, so the leader reads the records.
    await space.client.put(space.keys.barrierLeft).value(new Date().toISOString());
    const bad = {
      t0: "{}",
      t1: "not json",
      t2: JSON.stringify({ from: "w/1", to: "w1", value: "{}" }),
    };
    for (const [id, value] of Object.entries(bad)) await space.client.put(space.keys.move(id)).value(value);
    // Begun as a leader begins a move: the record written in the transaction that removes the task.
    const begun = { from: "gone", to: "w1", value: JSON.stringify({ id: "t3" }) };
    const removed = space.keys.task("gone", "t3");
    await space.client.put(removed).value(begun.value);
    await space.client
      .if(removed, "Version", ">", 0)
      .then(
        space.client.delete().key(removed),
        space.client.put(space.keys.move("t3")).value(JSON.stringify(begun)),
      )
      .commit();
    const handoffs: string[] = [];
    // The generator fails: only the resumed move can place t3.
    const master = testMaster(
      space,
      () => {
        throw new Error("down");
      },
      { handoff: "wait", logger },
    );
    master.on("handoffWait", (event) => handoffs.push(event.task));
    await master.start();

    await waitFor("t3 written to w1", async () => (await tasksOn(space, "w1")).includes("t3"));
    // The event follows the write's answer: a read may see the key a moment before the master hears back.
    await waitFor("the hand-off event", () => handoffs.length > 0);
    expect(handoffs).toEqual(["t3"]);
    expect(await space.client.get(space.keys.move("t3")).string()).toBeNull();
    const badKeys = warnings.filter((line) => line.msg === "bad record in etcd").map((line) => line.key);
    expect(badKeys.sort()).toEqual(Object.keys(bad).map((id) => space.keys.move(id)));
    expect((await assignment(space.client, space.keys)).size).toBe(1);
  });
});
