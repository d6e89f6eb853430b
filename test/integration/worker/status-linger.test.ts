import { describe, expect, it, vi } from "vitest";
import { LeaseSession, silentLogger, type TaskStatus } from "../../../src/node/index.js";
import { StatusWriter } from "../../../src/worker/status-writer.js";
import { testSpace } from "../../helpers/context.js";

const running: TaskStatus = { state: "running", attempt: 1, since: new Date(0).toISOString() };

describe("status writes linger to share transactions", () => {
  it("gathers writes made over several turns of the event loop into transactions of at most 128 ops", async () => {
    const { client, keys } = testSpace("linger");
    const session = await LeaseSession.grant(client, { ttlMs: 5_000 });
    // A long linger, so a loaded machine's slow turns cannot end it early: full batches still go at once.
    const writer = new StatusWriter(client, keys, "w1", session, silentLogger, 5_000);
    const txn = vi.spyOn(client.kv, "txn");
    const written: Array<Promise<void>> = [];
    // 300 statuses, 20 per turn of the event loop (as tasks arrive over several watch events).
    for (let turn = 0; turn < 15; turn++) {
      for (let i = 0; i < 20; i++) written.push(writer.put(`t${turn * 20 + i}`, running));
      await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(written);
    const sizes = txn.mock.calls.map(([request]) => request.success?.length ?? 0);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(300);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(128);
    // Two full transactions as soon as they filled, the rest when the linger ended (each turn's 20 alone: 15).
    expect(sizes).toEqual([128, 128, 44]);
    expect(await client.getAll().prefix(keys.workerStatusPrefix("w1")).count()).toBe(300);
    await session.close();
  });

  it("keeps each transaction under 1 MiB", async () => {
    const { client, keys } = testSpace("linger-bytes");
    const session = await LeaseSession.grant(client, { ttlMs: 5_000 });
    const writer = new StatusWriter(client, keys, "w1", session, silentLogger);
    const txn = vi.spyOn(client.kv, "txn");
    const large = { ...running, error: "x".repeat(300 * 1024) };
    await Promise.all(Array.from({ length: 5 }, (_, i) => writer.put(`big${i}`, large)));
    const bytes = txn.mock.calls.map(([request]) =>
      (request.success ?? []).reduce((sum, op) => sum + (op.request_put?.value?.length ?? 0), 0),
    );
    expect(bytes.every((size) => size < 1024 * 1024)).toBe(true);
    expect(bytes.length).toBe(2);

    await session.close();
  });
});
