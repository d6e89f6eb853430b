import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KeyLayout, type Logger } from "../../../src/node/index.js";
import { pause, resume } from "../../../src/operator/index.js";
import { testClient, testSpace, uniqueRoot, waitFor } from "../../helpers/context.js";
import { type EtcdMember, startEtcd } from "../../helpers/etcd.js";
import { assignment, FakeWorker, tasks, testMaster } from "./fixtures.js";

type Space = ReturnType<typeof testSpace>;

const FORGED = "move record not written by a leader removed";
const UNPROVEN = "move record whose history is compacted removed; a schedule places its task";

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
  // This test compacts etcd, so it uses its own member instead of the run's shared one.
  let member: EtcdMember;
  beforeAll(async () => {
    member = await startEtcd();
  });
  afterAll(async () => {
    await member?.destroy();
  });

  it("a move whose history etcd compacted is not finished on its record's word: deleted with a warning, the next schedule places the task", async () => {
    const root = uniqueRoot("moves-compacted");
    const endpoints = [member.hostPort];
    const { space } = await pausedCluster({
      root,
      keys: new KeyLayout(root),
      client: testClient(endpoints),
      endpoints,
    });
    const { client, keys } = space;
    await beginMove(space, "t2", "w1", "w2");
    const { header } = await client.get(keys.plan).exec();
    await client.kv.compact({ revision: header.revision });
    const { logger, lines } = capture();
    const master = testMaster(space, () => tasks(3), { handoff: "wait", logger });
    const paused = new Promise<void>((resolve) => master.once("paused", () => resolve()));
    await master.start();
    await paused;

    await waitFor("the record gone", async () => (await client.get(keys.move("t2")).string()) === null);
    expect(lines.filter((line) => line.msg === UNPROVEN).map((line) => line.key)).toEqual([keys.move("t2")]);
    expect((await assignment(client, keys)).has("t2")).toBe(false);

    await resume(client, space.root);
    await waitFor("t2 placed by a schedule", async () => (await assignment(client, keys)).has("t2"));
  });
});
