import type { Etcd3 } from "etcd3";
import { describe, expect, it, vi } from "vitest";
import { type KeyLayout, LeaseSession, silentLogger, type TaskStatus } from "../../../src/node/index.js";
import { StatusWriter } from "../../../src/worker/status-writer.js";
import { testSpace } from "../../helpers/context.js";

const running: TaskStatus = { state: "running", attempt: 1, since: new Date(0).toISOString() };
const starting: TaskStatus = { ...running, state: "starting" };
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

/**
 * Records the size of each transaction the client sends (claims and plain writes apart) and holds
 * those numbered in `held` (1-based) until `release()`, as a busy etcd would.
 */
function txnGate(client: Etcd3, held: number[]) {
  const txn = client.kv.txn.bind(client.kv);
  const sent: string[] = [];
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  vi.spyOn(client.kv, "txn").mockImplementation(async (request, options) => {
    const ops = request.success ?? [];
    const claims = ops.filter((op) => op.request_txn?.compare?.some((c) => c.target === "Mod")).length;
    const deletions = ops.filter((op) => op.request_txn?.success?.[0]?.request_delete_range).length;
    const plain = ops.length - claims - deletions;
    sent.push(
      claims > 0
        ? `${plain}+${claims} claims`
        : deletions > 0
          ? `${plain}+${deletions} deletions`
          : `${plain}`,
    );
    if (held.includes(sent.length)) await released;
    return txn(request, options);
  });
  return { sent, release };
}

async function taskRevision(client: Etcd3, keys: KeyLayout, id: string): Promise<number> {
  return Number((await client.put(keys.task("w1", id)).value("{}").exec()).header.revision);
}

describe("status writes by group commit", () => {
  it("sends a write on the next turn when none is in flight, and batches the rest behind the one that is", async () => {
    const { client, keys } = testSpace("group");
    const session = await LeaseSession.grant(client, { ttlMs: 5_000 });
    // A claim requires the worker's registration under its lease.
    await client.put(keys.worker("w1")).value("{}").lease(session.id);
    const writer = new StatusWriter(client, keys, "w1", session, silentLogger);
    const { sent, release } = txnGate(client, [1]);
    const first = writer.put("a", running);
    await nextTurn();
    // No linger: an idle worker's write waits for nothing.
    expect(sent).toEqual(["1"]);
    // Three turns of writes while it is in flight: they wait for it, then travel together.
    const later: Array<Promise<unknown>> = [];
    for (const id of ["b", "c", "d"]) {
      later.push(writer.put(id, running));
      await nextTurn();
    }
    expect(sent).toEqual(["1"]);
    release();
    await Promise.all([first, ...later]);
    expect(sent).toEqual(["1", "3"]);
    expect(await client.getAll().prefix(keys.workerStatusPrefix("w1")).count()).toBe(4);
    await session.close();
  });

  it("sends a start claim at once behind plain status writes in flight, and batches claims only behind a claim", async () => {
    const { client, keys } = testSpace("group-claims");
    const session = await LeaseSession.grant(client, { ttlMs: 5_000 });
    // A claim requires the worker's registration under its lease.
    await client.put(keys.worker("w1")).value("{}").lease(session.id);
    const writer = new StatusWriter(client, keys, "w1", session, silentLogger);
    const [x, y] = [await taskRevision(client, keys, "x"), await taskRevision(client, keys, "y")];
    const { sent, release } = txnGate(client, [1, 2]);
    const plain = writer.put("a", running);
    await nextTurn();
    // A start waits for its claim: it does not queue behind the previous task's `running`.
    const claimX = writer.claim("x", starting, x);
    await nextTurn();
    expect(sent).toEqual(["1", "0+1 claims"]);
    // Behind a claim in flight, the next claim and a plain write wait, then go together.
    const claimY = writer.claim("y", starting, y);
    const plainB = writer.put("b", running);
    await nextTurn();
    expect(sent).toEqual(["1", "0+1 claims"]);
    release();
    const outcomes = await Promise.all([claimX, claimY]);
    await Promise.all([plain, plainB]);
    expect(sent).toEqual(["1", "0+1 claims", "1+1 claims"]);
    expect(outcomes.map((outcome) => outcome.claimed)).toEqual([true, true]);
    expect(await client.getAll().prefix(keys.workerStatusPrefix("w1")).count()).toBe(4);
    await session.close();
  });

  it("sends a deletion as soon as the callback that made it returns, behind plain status writes in flight, and batches deletions only behind a deletion", async () => {
    const { client, keys } = testSpace("group-deletions");
    const session = await LeaseSession.grant(client, { ttlMs: 5_000 });
    const writer = new StatusWriter(client, keys, "w1", session, silentLogger);
    await Promise.all(["x", "y"].map((id) => writer.put(id, running)));
    const { sent, release } = txnGate(client, [1, 2]);
    const plain = writer.put("a", running);
    await nextTurn();
    // A stop's deletion (the master waits for it to hand the task over) does not queue behind `running`.
    const removeX = writer.remove("x");
    await Promise.resolve();
    expect(sent).toEqual(["1", "0+1 deletions"]);
    // Behind a deletion in flight, the next deletion and a plain write wait, then go together.
    const removeY = writer.remove("y");
    const plainB = writer.put("b", running);
    await nextTurn();
    expect(sent).toEqual(["1", "0+1 deletions"]);
    release();
    await Promise.all([plain, removeX, removeY, plainB]);
    expect(sent).toEqual(["1", "0+1 deletions", "1+1 deletions"]);
    const left = await client.getAll().prefix(keys.workerStatusPrefix("w1")).keys();
    expect(left.sort()).toEqual([keys.status("w1", "a"), keys.status("w1", "b")]);
    await session.close();
  });

  it("sends a start claim as soon as the callback that made it returns, with the writes made beside it", async () => {
    const { client, keys } = testSpace("group-claim-soon");
    const session = await LeaseSession.grant(client, { ttlMs: 5_000 });
    // A claim requires the worker's registration under its lease.
    await client.put(keys.worker("w1")).value("{}").lease(session.id);
    const writer = new StatusWriter(client, keys, "w1", session, silentLogger);
    const [x, y] = [await taskRevision(client, keys, "x"), await taskRevision(client, keys, "y")];
    const { sent } = txnGate(client, []);
    // A plain write alone waits for the next turn, to travel with the writes that turn makes.
    const plain = writer.put("a", running);
    await Promise.resolve();
    expect(sent).toEqual([]);
    await nextTurn();
    expect(sent).toEqual(["1"]);
    await plain;
    // Claims made in one callback (one watch response's tasks) go together before any I/O of the turn.
    const beside = writer.put("b", running);
    const claims = [writer.claim("x", starting, x), writer.claim("y", starting, y)];
    await Promise.resolve();
    expect(sent).toEqual(["1", "1+2 claims"]);
    const outcomes = await Promise.all(claims);
    await beside;
    expect(outcomes.map((outcome) => outcome.claimed)).toEqual([true, true]);
    expect(await client.getAll().prefix(keys.workerStatusPrefix("w1")).count()).toBe(4);
    await session.close();
  });

  it("sends full batches of at most 128 ops while one is in flight", async () => {
    const { client, keys } = testSpace("group-full");
    const session = await LeaseSession.grant(client, { ttlMs: 5_000 });
    // A claim requires the worker's registration under its lease.
    await client.put(keys.worker("w1")).value("{}").lease(session.id);
    const writer = new StatusWriter(client, keys, "w1", session, silentLogger);
    const { sent, release } = txnGate(client, [1]);
    const written = [writer.put("first", running)];
    await nextTurn();
    // 300 statuses, 20 per turn of the event loop (as tasks arrive over several watch events).
    for (let turn = 0; turn < 15; turn++) {
      for (let i = 0; i < 20; i++) written.push(writer.put(`t${turn * 20 + i}`, running));
      await nextTurn();
    }
    // A full batch does not wait for the one in flight: each went on the turn it filled.
    expect(sent).toEqual(["1", "128", "128"]);
    release();
    await Promise.all(written);
    // The rest went together once the held one was answered.
    expect(sent).toEqual(["1", "128", "128", "44"]);
    expect(await client.getAll().prefix(keys.workerStatusPrefix("w1")).count()).toBe(301);
    await session.close();
  });

  it("keeps each transaction under 1 MiB", async () => {
    const { client, keys } = testSpace("group-bytes");
    const session = await LeaseSession.grant(client, { ttlMs: 5_000 });
    // A claim requires the worker's registration under its lease.
    await client.put(keys.worker("w1")).value("{}").lease(session.id);
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
