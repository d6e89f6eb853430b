import type { Etcd3 } from "etcd3";
import { describe, expect, it, vi } from "vitest";
import { EschedulerError } from "../../../src/errors.js";
import { type KeyLayout, LeaseSession, silentLogger } from "../../../src/node/index.js";
import { RegistrationWatch } from "../../../src/worker/registration-watch.js";
import { PrefixWatcher, WatchGroup } from "../../../src/watcher/index.js";
import { testSpace, waitFor } from "../../helpers/context.js";

/** A session's watch of its own registration `/R/worker/w1`, on a real etcd. */
async function watched(label: string) {
  const { client, keys } = testSpace(label);
  const lease = await LeaseSession.grant(client, { ttlMs: 10_000 });
  await client.put(keys.worker("w1")).value("{}").lease(lease.id);
  const lost: Array<{ reason: EschedulerError; kind: string }> = [];
  const watch = new RegistrationWatch({
    client,
    keys,
    name: "w1",
    lease,
    logger: silentLogger,
    onLost: (reason, kind) => lost.push({ reason, kind }),
  });
  const stop = new AbortController();
  await watch.start(stop.signal);
  const close = async () => {
    stop.abort();
    await watch.close();
    await lease.close();
  };
  return { client, keys, lease, lost, watch, close };
}

describe("the watch of a worker's own registration", () => {
  it("says nothing while the registration is its own, even rewritten under its lease, nor for a worker named w10", async () => {
    const { client, keys, lease, lost, watch, close } = await watched("regwatch-own");
    await client.put(keys.worker("w1")).value('{"name":"w1"}').lease(lease.id);
    await client.put(keys.worker("w10")).value("{}");
    await client.delete().key(keys.worker("w10"));
    // A later change that is reported proves the earlier ones were heard and judged.
    await client.delete().key(keys.worker("w1"));
    await waitFor("the deletion to be reported", () => lost.length > 0);

    expect(lost).toEqual([expect.objectContaining({ kind: "registration" })]);
    expect(lost[0]?.reason.code).toBe("ERR_REGISTRATION_LOST");
    expect(watch.signal.aborted).toBe(true);
    await close();
  });

  it("reports a registration rewritten under another lease, reading it again when the first read fails", async () => {
    const { client, keys, lost, close } = await watched("regwatch-taken");
    const get = client.get.bind(client);
    const spy = vi.spyOn(client, "get").mockImplementationOnce((key) => {
      const builder = get(key);
      vi.spyOn(builder, "exec").mockRejectedValueOnce(new Error("etcd unavailable"));
      return builder;
    });
    const other = await client.lease(60, { autoKeepAlive: false }).grant();

    await client.put(keys.worker("w1")).value("{}").lease(other);
    await waitFor("the takeover to be reported", () => lost.length > 0);

    expect(spy).toHaveBeenCalledTimes(2);
    expect(lost).toEqual([expect.objectContaining({ kind: "registration" })]);
    expect(lost[0]?.reason.message).toContain(`held by lease ${other}`);
    await client.leaseClient.leaseRevoke({ ID: other });
    await close();
  });

  it("tells a registration that went with the lease itself apart: a lease loss", async () => {
    const { client, lease, lost, close } = await watched("regwatch-lease");

    await client.leaseClient.leaseRevoke({ ID: lease.id });
    await waitFor("the loss to be reported", () => lost.length > 0);

    expect(lost).toEqual([expect.objectContaining({ kind: "lease" })]);
    expect(lost[0]?.reason.code).toBe("ERR_LEASE_LOST");
    await close();
  });

  it("started from the registration's revision reads nothing, and still hears a takeover made before it started", async () => {
    const { client, keys } = testSpace("regwatch-from");
    const lease = await LeaseSession.grant(client, { ttlMs: 10_000 });
    const registered = await client.put(keys.worker("w1")).value("{}").lease(lease.id).exec();
    const other = await client.lease(60, { autoKeepAlive: false }).grant();
    await client.put(keys.worker("w1")).value("{}").lease(other);
    const txn = vi.spyOn(client.kv, "txn");
    const range = vi.spyOn(client.kv, "range");
    const lost: string[] = [];
    const watch = messagesWatch(client, keys, lease, lost, {
      registeredAt: Number(registered.header.revision),
    });
    const stop = new AbortController();
    await watch.start(stop.signal);
    expect(txn).not.toHaveBeenCalled();
    await waitFor("the takeover to be reported", () => lost.length > 0);

    expect(lost).toEqual([expect.stringContaining(`held by lease ${other}`)]);
    expect(range).toHaveBeenCalledTimes(1);
    stop.abort();
    await watch.close();
    await client.leaseClient.leaseRevoke({ ID: other });
    await lease.close();
  });

  it("in a watch group, judges the key in the group's one read: a takeover made before it is reported, the tasks watch reading nothing more", async () => {
    const { client, keys } = testSpace("regwatch-group");
    const other = await client.lease(60, { autoKeepAlive: false }).grant();
    const subject = await groupWatched(client, keys, keys.workerTasksPrefix("w1"), async () => {
      await client.put(keys.worker("w1")).value("{}").lease(other);
      await client.put(keys.task("w1", "a")).value("{}");
    });
    expect([...subject.view.keys()]).toEqual([keys.task("w1", "a")]);
    await waitFor("the takeover to be reported", () => subject.lost.length > 0);

    expect(subject.lost).toEqual([expect.stringContaining(`held by lease ${other}`)]);
    expect(subject.txn).toHaveBeenCalledTimes(1);
    expect(subject.range).not.toHaveBeenCalled();
    await subject.close();
    await client.leaseClient.leaseRevoke({ ID: other });
  });

  it("in a watch group, says nothing while the read shows its own registration, and hears a deletion after", async () => {
    const { client, keys } = testSpace("regwatch-group-own");
    const { other, lost, close } = await groupWatched(client, keys, keys.plan, async () => undefined);
    // A plan change is heard on the shared stream: the registration's watch was running by then too.
    await client.put(keys.plan).value("{}");
    await waitFor("the plan change", () => other.entries.has(keys.plan));
    expect(lost).toEqual([]);

    await client.delete().key(keys.worker("w1"));
    await waitFor("the deletion to be reported", () => lost.length > 0);
    expect(lost).toEqual([expect.stringContaining("deleted")]);
    await close();
  });
});

/**
 * `/R/worker/w1` registered under a new lease, then `before()`, then the registration's watch and a
 * watch of `prefix` started in one group (etcd's reads counted from then on).
 */
async function groupWatched(client: Etcd3, keys: KeyLayout, prefix: string, before: () => Promise<void>) {
  const lease = await LeaseSession.grant(client, { ttlMs: 10_000 });
  await client.put(keys.worker("w1")).value("{}").lease(lease.id);
  await before();
  const txn = vi.spyOn(client.kv, "txn");
  const range = vi.spyOn(client.kv, "range");
  const lost: string[] = [];
  const group = new WatchGroup(client, silentLogger);
  const watch = messagesWatch(client, keys, lease, lost, { group });
  const other = new PrefixWatcher(client, prefix, { group });
  const stop = new AbortController();
  await watch.start(stop.signal);
  const view = await other.start(stop.signal);
  const close = async () => {
    stop.abort();
    await watch.close();
    await lease.close();
  };
  return { lost, txn, range, other, view, close };
}

/** The watch of `w1`'s registration under `lease`, pushing each loss's message to `lost`. */
function messagesWatch(
  client: Etcd3,
  keys: KeyLayout,
  lease: LeaseSession,
  lost: string[],
  start: { registeredAt?: number; group?: WatchGroup },
): RegistrationWatch {
  return new RegistrationWatch({
    client,
    keys,
    name: "w1",
    lease,
    logger: silentLogger,
    onLost: (reason) => lost.push(reason.message),
    ...start,
  });
}
