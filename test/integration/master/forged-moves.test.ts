import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KeyLayout, type Logger } from "../../../src/node/index.js";
import { pause, resume } from "../../../src/operator/index.js";
import { testClient, testSpace, uniqueRoot, waitFor } from "../../helpers/context.js";
import { type EtcdMember, startEtcd } from "../../helpers/etcd.js";
import { assignment, FakeWorker, tasks, testMaster } from "./fixtures.js";

type Space = ReturnType<typeof testSpace>;

const FORGED = "move record not written by a leader removed";
const UNPROVEN = "move record whose history is compacted removed";
const UNPROVEN_FINISHED =
  "move record whose history is compacted finished: its task is generated and assigned nowhere";

function capture(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger: Logger = pino(
    { level: "warn" },
    { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  );
  return { logger, lines };
}

/** A move begun as a leader begins one: `/R/task/<from>/<id>` deleted in the transaction that writes the record. */
async function beginMove(space: Space, id: string, from: string, to: string): Promise<void> {
  const { client, keys } = space;
  const value = JSON.stringify({ id });
  await client.put(keys.task(from, id)).value(value);
  await client
    .if(keys.task(from, id), "Version", ">", 0)
    .then(
      client.delete().key(keys.task(from, id)),
      client.put(keys.move(id)).value(JSON.stringify({ from, to, value, priority: 0 })),
    )
    .commit();
}

/** Two workers, t0 on w1 and t1 on w2 (running), a leader's earlier term over (not a first start), schedules paused. */
async function pausedCluster(space: Space) {
  const w1 = await FakeWorker.start(space.client, space.keys, "w1", { ttlMs: 10_000 });
  const w2 = await FakeWorker.start(space.client, space.keys, "w2", { ttlMs: 10_000 });
  await space.client.put(space.keys.barrierLeft).value(new Date().toISOString());
  for (const [id, worker] of [
    ["t0", "w1"],
    ["t1", "w2"],
  ] as const)
    await space.client.put(space.keys.task(worker, id)).value(JSON.stringify({ id }));
  await pause(space.client, space.root, { reason: "incident" });
  return { space, w1, w2 };
}

describe("move records a new leader finishes (issue 19)", () => {
  it("while paused, it finishes only the moves a leader began; records written by hand are deleted with one warning each and write no task", async () => {
    const { space } = await pausedCluster(testSpace("moves-forged"));
    const { client, keys } = space;
    await beginMove(space, "t2", "w1", "w2");
    const forged = {
      // Never generated.
      ghost: { from: "w1", to: "w2", value: JSON.stringify({ id: "ghost" }) },
      // From a worker that never had it, while it runs on w1.
      t0: { from: "w2", to: "w2", value: JSON.stringify({ id: "t0" }) },
      // From its live owner, which still has it.
      t1: { from: "w2", to: "w1", value: JSON.stringify({ id: "t1" }) },
    };
    for (const [id, record] of Object.entries(forged))
      await client.put(keys.move(id)).value(JSON.stringify(record));
    await client.put(keys.move("bad")).value("{}");
    const { logger, lines } = capture();
    const master = testMaster(space, () => tasks(3), { handoff: "wait", logger });
    const paused = new Promise<void>((resolve) => master.once("paused", () => resolve()));
    await master.start();
    await paused;

    await waitFor("t2 written to w2", async () => (await assignment(client, keys)).get("t2") === "w2");
    await waitFor(
      "every record gone",
      async () => (await client.getAll().prefix(keys.movesPrefix).keys()).length === 0,
    );

    expect(Object.fromEntries(await assignment(client, keys))).toEqual({ t0: "w1", t1: "w2", t2: "w2" });
    const forgedKeys = lines.filter((line) => line.msg === FORGED).map((line) => line.key);
    expect(forgedKeys.sort()).toEqual(
      Object.keys(forged)
        .map((id) => keys.move(id))
        .sort(),
    );
    const badKeys = lines.filter((line) => line.msg === "bad record in etcd").map((line) => line.key);
    expect(badKeys).toEqual([keys.move("bad")]);
  });
});

describe("a move record whose history etcd compacted (issue 19)", () => {
  // These tests compact etcd, so they use their own member instead of the run's shared one.
  let member: EtcdMember;
  beforeAll(async () => {
    member = await startEtcd();
  });
  afterAll(async () => {
    await member?.destroy();
  });

  /** t0 on w1, t1 on w2, schedules paused unless told otherwise, on the compacting member. */
  async function compactingCluster(name: string, options: { paused?: boolean } = {}) {
    const root = uniqueRoot(name);
    const endpoints = [member.hostPort];
    const { space } = await pausedCluster({
      root,
      keys: new KeyLayout(root),
      client: testClient(endpoints),
      endpoints,
    });
    if (options.paused === false) await resume(space.client, space.root);
    return space;
  }

  /** Compacts etcd at its current revision: no record written so far can be proven from history. */
  async function compact(space: Space): Promise<void> {
    const { header } = await space.client.get(space.keys.plan).exec();
    await space.client.kv.compact({ revision: header.revision });
  }

  it("a genuine move whose history etcd compacted still finishes while schedules are paused", async () => {
    const space = await compactingCluster("moves-compacted");
    const { client, keys } = space;
    await beginMove(space, "t2", "w1", "w2");
    await compact(space);
    const { logger, lines } = capture();
    const master = testMaster(space, () => tasks(3), { handoff: "wait", logger });
    const paused = new Promise<void>((resolve) => master.once("paused", () => resolve()));
    await master.start();
    await paused;

    await waitFor("t2 written to w2", async () => (await assignment(client, keys)).get("t2") === "w2");
    await waitFor("the record gone", async () => (await client.get(keys.move("t2")).string()) === null);
    expect(Object.fromEntries(await assignment(client, keys))).toEqual({ t0: "w1", t1: "w2", t2: "w2" });
    expect(lines.filter((line) => line.msg === UNPROVEN)).toEqual([]);
    expect(lines.filter((line) => line.msg === UNPROVEN_FINISHED).map((line) => line.key)).toEqual([
      keys.move("t2"),
    ]);
  });

  it("a genuine move whose history etcd compacted still finishes while the removal guard refuses every schedule", async () => {
    const space = await compactingCluster("moves-compacted-guard", { paused: false });
    const { client, keys } = space;
    await beginMove(space, "t2", "w1", "w2");
    await compact(space);
    // The generator drops t0 and t1: the schedule would stop 2 of 2 assigned tasks.
    const master = testMaster(space, () => [{ id: "t2" }], { handoff: "wait", maxRemovalPercent: 50 });
    const refused = new Promise<string>((resolve) =>
      master.on("scheduleFailed", (event) => resolve(event.reason)),
    );
    await master.start();
    expect(await refused).toBe("removal_guard");

    await waitFor("t2 written to w2", async () => (await assignment(client, keys)).get("t2") === "w2");
    expect(Object.fromEntries(await assignment(client, keys))).toEqual({ t0: "w1", t1: "w2", t2: "w2" });
    expect(await client.get(keys.move("t2")).string()).toBeNull();
  });

  it("while paused, a record whose history etcd compacted writes only a generated task assigned nowhere, with its generated value; the others are deleted with one warning each", async () => {
    const space = await compactingCluster("moves-compacted-forged");
    const { client, keys } = space;
    const forged = {
      // Never generated.
      ghost: { from: "w1", to: "w2", value: JSON.stringify({ id: "ghost" }) },
      // Assigned to w1 (its old key still there).
      t0: { from: "w1", to: "w2", value: JSON.stringify({ id: "t0" }) },
      // Assigned to w2 already, the record's target (its old owner w1 never had it).
      t1: { from: "w1", to: "w2", value: JSON.stringify({ id: "t1" }) },
      // Generated and assigned nowhere, with a value the generator never made.
      t3: { from: "w1", to: "w2", value: JSON.stringify({ id: "t3", payload: "not generated" }) },
    };
    for (const [id, record] of Object.entries(forged))
      await client.put(keys.move(id)).value(JSON.stringify(record));
    await compact(space);
    const { logger, lines } = capture();
    const master = testMaster(space, () => tasks(4), { handoff: "wait", logger });
    const paused = new Promise<void>((resolve) => master.once("paused", () => resolve()));
    await master.start();
    await paused;

    await waitFor("t3 written to w2", async () => (await assignment(client, keys)).get("t3") === "w2");
    await waitFor(
      "every record gone",
      async () => (await client.getAll().prefix(keys.movesPrefix).keys()).length === 0,
    );
    expect(Object.fromEntries(await assignment(client, keys))).toEqual({ t0: "w1", t1: "w2", t3: "w2" });
    expect(JSON.parse((await client.get(keys.task("w2", "t3")).string()) ?? "")).toEqual({ id: "t3" });
    const unproven = Object.fromEntries(
      lines.filter((line) => line.msg === UNPROVEN).map((line) => [line.key, line.reason]),
    );
    expect(unproven).toEqual({
      [keys.move("ghost")]: "the task is not generated now, or is quarantined",
      [keys.move("t0")]: "the task is assigned to w1",
      [keys.move("t1")]: "the task is assigned to w2",
    });
    expect(lines.filter((line) => line.msg === UNPROVEN_FINISHED).map((line) => line.key)).toEqual([
      keys.move("t3"),
    ]);
  });

  it("while paused, a record whose history etcd compacted is deleted with its reason when its target is cordoned, unregistered or breaks key affinity", async () => {
    const space = await compactingCluster("moves-compacted-targets");
    const { client, keys } = space;
    await FakeWorker.start(client, keys, "w3", { ttlMs: 10_000 });
    await client
      .put(keys.cordon("w3"))
      .value(JSON.stringify({ mode: "cordon", at: new Date().toISOString() }));
    // t5 shares t4's key and is on w2: t4 belongs there too.
    await client.put(keys.task("w2", "t5")).value(JSON.stringify({ id: "t5", key: "k" }));
    const forged = {
      t2: { from: "w1", to: "w3", value: JSON.stringify({ id: "t2" }) },
      t3: { from: "w1", to: "ghost", value: JSON.stringify({ id: "t3" }) },
      t4: { from: "w2", to: "w1", value: JSON.stringify({ id: "t4", key: "k" }) },
    };
    for (const [id, record] of Object.entries(forged))
      await client.put(keys.move(id)).value(JSON.stringify(record));
    await compact(space);
    const { logger, lines } = capture();
    const generate = () => [...tasks(4), { id: "t4", key: "k" }, { id: "t5", key: "k" }];
    const master = testMaster(space, generate, { handoff: "wait", logger });
    const paused = new Promise<void>((resolve) => master.once("paused", () => resolve()));
    await master.start();
    await paused;

    await waitFor(
      "every record gone",
      async () => (await client.getAll().prefix(keys.movesPrefix).keys()).length === 0,
    );
    const unproven = Object.fromEntries(
      lines.filter((line) => line.msg === UNPROVEN).map((line) => [line.key, line.reason]),
    );
    expect(unproven).toEqual({
      [keys.move("t2")]: '"w3" is cordoned',
      [keys.move("t3")]: '"ghost" is not registered',
      [keys.move("t4")]: 'the task\'s key "k" is on w2',
    });
    expect(lines.filter((line) => line.msg === UNPROVEN_FINISHED)).toEqual([]);
    // No record is left held: a worker named ghost registering later (still paused) would be given nothing.
    expect(Object.fromEntries(await assignment(client, keys))).toEqual({ t0: "w1", t1: "w2", t5: "w2" });
  });

  it("when the generator fails, a record whose history etcd compacted is deleted with the reason and the term goes on", async () => {
    const space = await compactingCluster("moves-compacted-generator");
    const { client, keys } = space;
    await beginMove(space, "t2", "w1", "w2");
    await compact(space);
    const { logger, lines } = capture();
    const master = testMaster(
      space,
      () => {
        throw new Error("inventory unreachable");
      },
      { handoff: "wait", logger },
    );
    const paused = new Promise<void>((resolve) => master.once("paused", () => resolve()));
    await master.start();
    await paused;

    await waitFor("the record gone", async () => (await client.get(keys.move("t2")).string()) === null);
    const unproven = lines.filter((line) => line.msg === UNPROVEN);
    expect(unproven.map((line) => [line.key, line.reason])).toEqual([
      [keys.move("t2"), "the generator failed: generator threw: inventory unreachable"],
    ]);
    expect(Object.fromEntries(await assignment(client, keys))).toEqual({ t0: "w1", t1: "w2" });
  });
});
