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
