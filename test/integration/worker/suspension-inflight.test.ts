import type { Etcd3 } from "etcd3";
import { describe, expect, it } from "vitest";
import { LeaseSession, silentLogger, type TaskStatus } from "../../../src/node/index.js";
import { SessionStatus } from "../../../src/worker/session-status.js";
import { testSpace, waitFor } from "../../helpers/context.js";

const running: TaskStatus = { state: "running", attempt: 1, since: new Date(0).toISOString() };

/**
 * `client` whose first transaction is slow on the way to etcd: it is sent on once a later transaction
 * (a read) has been answered, or after `lateMs`, as a write still on the wire when a later read overtakes it.
 */
function slowFirstWrite(client: Etcd3, lateMs = 300) {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const state = { held: false, landed: false };
  const kv = new Proxy(client.kv, {
    get(target, property, receiver) {
      if (property === "txn")
        return async (...args: Parameters<Etcd3["kv"]["txn"]>) => {
          if (state.held) {
            const answer = await target.txn(...args);
            release();
            return answer;
          }
          state.held = true;
          setTimeout(release, lateMs);
          await released;
          try {
            return await target.txn(...args);
          } finally {
            state.landed = true;
          }
        };
      const value = Reflect.get(target, property, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { client: Object.assign(Object.create(client) as Etcd3, { kv }), state };
}

describe("status keys across a lease suspension", () => {
  it("a status write in flight when the suspension closed the writer leaves no key once resumed", async () => {
    const { client, keys } = testSpace("inflight");
    const lease = await LeaseSession.grant(client, { ttlMs: 10_000 });
    // A claim requires the worker's registration under its lease.
    await client.put(keys.worker("w1")).value("{}").lease(lease.id);
    const slow = slowFirstWrite(client);
    const status = new SessionStatus({ client: slow.client, keys, name: "w1", lease, logger: silentLogger });

    void status.put("t37", running);
    await waitFor("the status write on its way", () => slow.state.held);
    status.suspend(); // keep-alive overdue: t37 stops, its removal is skipped
    await status.resume(() => false); // t37 no longer runs here
    await waitFor("the late write to reach etcd", () => slow.state.landed);

    expect(await client.get(keys.status("w1", "t37")).string()).toBeNull();
    await lease.close();
  });
});

/**
 * `client` whose clean-up transactions (nested per-key deletions), while `hold` is set, wait for `release()` on their way to etcd;
 * `answerEarly` makes the caller see a deadline error at once while the transaction still lands
 * when released (a client-side timeout does not cancel a write etcd has not received yet).
 */
function heldWrites(client: Etcd3) {
  const state = { hold: false, held: 0, answerEarly: false };
  const waiting: Array<() => void> = [];
  const landing: Array<Promise<unknown>> = [];
  const kv = new Proxy(client.kv, {
    get(target, property, receiver) {
      if (property === "txn")
        return async (...args: Parameters<Etcd3["kv"]["txn"]>) => {
          const deletes = args[0].success?.some((op) => op.request_txn !== undefined) ?? false;
          if (!state.hold || !deletes) return target.txn(...args);
          state.held += 1;
          const landed = new Promise<void>((resolve) => waiting.push(resolve)).then(() =>
            target.txn(...args),
          );
          landing.push(landed);
          if (!state.answerEarly) return landed;
          landed.catch(() => {});
          throw new Error("deadline exceeded (test)");
        };
      const value = Reflect.get(target, property, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  /** Sends the held transactions on; resolves once etcd has answered each. */
  const release = () => {
    state.hold = false;
    for (const send of waiting.splice(0)) send();
    return Promise.allSettled(landing.splice(0));
  };
  return { client: Object.assign(Object.create(client) as Etcd3, { kv }), state, release };
}

/** Worker w1's session statuses over `heldWrites`, t1's status stored, then the lease suspended. */
async function suspendedWithStatus(label: string) {
  const { client, keys } = testSpace(label);
  const lease = await LeaseSession.grant(client, { ttlMs: 10_000 });
  // A claim requires the worker's registration under its lease.
  await client.put(keys.worker("w1")).value("{}").lease(lease.id);
  const net = heldWrites(client);
  const status = new SessionStatus({ client: net.client, keys, name: "w1", lease, logger: silentLogger });
  await status.put("t1", running);
  status.suspend();
  return { client, keys, lease, net, status };
}

describe("status keys across a lease that flaps (suspended and resumed again before a clean-up ends)", () => {
  it("a resumption superseded by a later suspension writes nothing, and its clean-up deletes no status the later one wrote", async () => {
    const { client, keys, lease, net, status } = await suspendedWithStatus("flap");
    net.state.hold = true;
    const first = status.resume(() => false); // t1 had stopped: its status is stale
    await waitFor("the first clean-up on its way", () => net.state.held === 1);
    status.suspend(); // the lease flaps
    const second = status.resume(() => true); // t1 started again before this resumption
    void net.release();

    const [superseded, latest] = await Promise.all([first, second]);
    await status.put("t1", running);
    expect(JSON.parse((await client.get(keys.status("w1", "t1")).string()) ?? "null")).toMatchObject({
      state: "running",
    });
    expect([superseded, latest]).toEqual([false, true]);
    await lease.close();
  });

  it("a clean-up whose answer timed out but that etcd applies later deletes no status written since its read", async () => {
    const { client, keys, lease, net, status } = await suspendedWithStatus("late-cleanup");
    net.state.hold = true;
    net.state.answerEarly = true;
    await status.resume(() => false); // "could not clear": writes go on
    net.state.hold = false; // the clean-up alone stays on the wire
    await status.put("t1", running); // t1 starts here again before the clean-up reaches etcd
    const [late] = await net.release();
    expect(late?.status).toBe("fulfilled"); // the clean-up reached etcd after the write

    expect(await client.get(keys.status("w1", "t1")).string()).not.toBeNull();
    await lease.close();
  });
});
