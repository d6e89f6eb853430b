import { describe, expect, it, vi } from "vitest";
import { LeaseSession, silentLogger, type TaskStatus } from "../../../src/node/index.js";
import { StatusWriter } from "../../../src/worker/status-writer.js";
import { testSpace, waitFor } from "../../helpers/context.js";

const running: TaskStatus = { state: "running", attempt: 1, since: new Date(0).toISOString() };
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe("status writes by group commit", () => {
  it("sends a write at once when none is in flight, and batches only behind one that is", async () => {
    const { client, keys } = testSpace("group");
    const session = await LeaseSession.grant(client, { ttlMs: 5_000 });
    const writer = new StatusWriter(client, keys, "w1", session, silentLogger);
    // The first transaction is held (etcd busy), so what follows queues behind it.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const txn = client.kv.txn.bind(client.kv);
    const sizes: number[] = [];
    vi.spyOn(client.kv, "txn").mockImplementation(async (request, options) => {
      sizes.push(request.success?.length ?? 0);
      if (sizes.length === 1) await held;
      return txn(request, options);
    });
    const first = writer.put("a", running);
    await nextTurn();
    // Out on the next turn, no linger: an idle worker's write waits for nothing.
    expect(sizes).toEqual([1]);
    // Three turns of writes while it is in flight: they wait for it, then travel together.
    const later: Array<Promise<void>> = [];
    for (const id of ["b", "c", "d"]) {
      later.push(writer.put(id, running));
      await nextTurn();
    }
    expect(sizes).toEqual([1]);
    release();
    await Promise.all([first, ...later]);
    expect(sizes).toEqual([1, 3]);
    expect(await client.getAll().prefix(keys.workerStatusPrefix("w1")).count()).toBe(4);
    await session.close();
  });

  it("sends full batches of at most 128 ops while one is in flight", async () => {
    const { client, keys } = testSpace("group-full");
    const session = await LeaseSession.grant(client, { ttlMs: 5_000 });
    const writer = new StatusWriter(client, keys, "w1", session, silentLogger);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const txn = client.kv.txn.bind(client.kv);
    const sizes: number[] = [];
    vi.spyOn(client.kv, "txn").mockImplementation(async (request, options) => {
      sizes.push(request.success?.length ?? 0);
      if (sizes.length === 1) await held;
      return txn(request, options);
    });
    const written = [writer.put("first", running)];
    await nextTurn();
    // 300 statuses, 20 per turn of the event loop (as tasks arrive over several watch events).
    for (let turn = 0; turn < 15; turn++) {
      for (let i = 0; i < 20; i++) written.push(writer.put(`t${turn * 20 + i}`, running));
      await nextTurn();
    }
    // A full batch does not wait for the one in flight: each went on the turn it filled.
    expect(sizes).toEqual([1, 128, 128]);
    release();
    await Promise.all(written);
    // The rest went together once the held one was answered.
    expect(sizes).toEqual([1, 128, 128, 44]);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(128);
    expect(await client.getAll().prefix(keys.workerStatusPrefix("w1")).count()).toBe(301);
    await session.close();
  });

  it("holds no write behind a failed batch's pause: the failed one goes again after it, later ones at once", async () => {
    const { client, keys } = testSpace("group-retry");
    const session = await LeaseSession.grant(client, { ttlMs: 5_000 });
    const writer = new StatusWriter(client, keys, "w1", session, silentLogger);
    const txn = client.kv.txn.bind(client.kv);
    const sent: string[] = [];
    vi.spyOn(client.kv, "txn").mockImplementation(async (request, options) => {
      const ids = (request.success ?? []).map((op) => op.request_put?.key?.toString().split("/").at(-1));
      sent.push(ids.join(","));
      if (sent.length === 1) throw new Error("etcdserver: request timed out");
      return txn(request, options);
    });
    const landed: string[] = [];
    const first = writer.put("a", running).then(() => landed.push("a"));
    await waitFor("the first transaction failed", () => sent.length === 1);
    const second = writer.put("b", running).then(() => landed.push("b"));
    await Promise.all([first, second]);
    // b went during a's pause (200 ms), alone; a went again after it.
    expect(sent).toEqual(["a", "b", "a"]);
    expect(landed).toEqual(["b", "a"]);
    expect(await client.getAll().prefix(keys.workerStatusPrefix("w1")).count()).toBe(2);
    await session.close();
  });

  it("keeps each transaction under 1 MiB", async () => {
    const { client, keys } = testSpace("group-bytes");
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
