import { describe, expect, it } from "vitest";
import type { Generator, ScheduleFailedEvent } from "../../../src/master/index.js";
import type { Task } from "../../../src/node/index.js";
import { testSpace, waitFor } from "../../helpers/context.js";
import { FakeWorker, snapshot, tasks, testMaster } from "./fixtures.js";

const bad: Array<[string, Generator, { code: string; culprit: string }]> = [
  [
    "throws",
    () => {
      throw new Error("inventory service unreachable");
    },
    { code: "ERR_GENERATOR", culprit: "inventory service unreachable" },
  ],
  [
    "times out",
    () => new Promise<Task[]>(() => undefined),
    { code: "ERR_GENERATOR", culprit: "timed out after 300ms" },
  ],
  [
    "returns something else than an array",
    () => ({ tasks: [] }) as never,
    { code: "ERR_GENERATOR", culprit: "not an array" },
  ],
  [
    "returns a duplicate id",
    () => [...tasks(5), { id: "t2" }],
    { code: "ERR_BAD_TASK", culprit: 'task #5 (id "t2"): duplicate id (also task #2)' },
  ],
  ["returns a bad id", () => [...tasks(3), { id: "a/b" }], { code: "ERR_BAD_TASK", culprit: 'id "a/b"' }],
  [
    "returns an oversize payload",
    () => [...tasks(3), { id: "huge", payload: "x".repeat(2 * 1024 * 1024) }],
    { code: "ERR_BAD_TASK", culprit: 'id "huge"' },
  ],
  [
    "returns a payload that is not JSON",
    () => [...tasks(3), { id: "fn", payload: { callback: () => 1 } }],
    { code: "ERR_BAD_TASK", culprit: 'id "fn"): payload.callback is a function' },
  ],
  [
    "returns a weight of zero",
    () => [{ id: "w0", weight: 0 }],
    { code: "ERR_BAD_TASK", culprit: 'id "w0"): weight' },
  ],
];

describe("a generator that fails leaves etcd exactly as it was", () => {
  it.each(bad)("when it %s", async (_, failing, expected) => {
    const space = testSpace("badgen");
    await FakeWorker.start(space.client, space.keys, "w1");
    await FakeWorker.start(space.client, space.keys, "w2");
    let generator: Generator = () => tasks(8, { payload: { good: true } });
    const master = testMaster(space, (ctx) => generator(ctx), { timeoutMs: 300 });
    const failures: ScheduleFailedEvent[] = [];
    master.on("scheduleFailed", (event) => failures.push(event));
    await master.start();
    await waitFor("first schedule", async () => (await snapshot(space.client, space.keys))[space.keys.plan]);
    await waitFor(
      "every task reported running",
      async () => (await space.client.getAll().prefix(space.keys.statusPrefix).count()) === 8,
    );

    // A worker change too, so a working schedule would have rewritten the assignment.
    await FakeWorker.start(space.client, space.keys, "w3");
    generator = failing;
    const before = await snapshot(space.client, space.keys);
    const error = await master.scheduleNow("test").then(
      () => undefined,
      (e: { code: string; message: string }) => e,
    );

    expect(error?.code).toBe(expected.code);
    expect(error?.message).toContain(expected.culprit);
    expect(failures.at(-1)?.reason).toBe(expected.code);
    expect(await snapshot(space.client, space.keys)).toEqual(before);
    expect(master.isLeader).toBe(true);
  });
});
