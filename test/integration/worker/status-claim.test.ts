import { describe, expect, it } from "vitest";
import { LeaseSession, silentLogger, type TaskStatus } from "../../../src/node/index.js";
import { StatusWriter } from "../../../src/worker/status-writer.js";
import { testSpace } from "../../helpers/context.js";

const starting: TaskStatus = { state: "starting", attempt: 1, since: new Date(0).toISOString() };

describe("claiming a task start", () => {
  it("writes the status only while the task key is at the revision the worker saw", async () => {
    const { client, keys } = testSpace("claim");
    const session = await LeaseSession.grant(client, { ttlMs: 5_000 });
    // A claim requires the worker's registration under its lease.
    await client.put(keys.worker("w1")).value("{}").lease(session.id);
    const writer = new StatusWriter(client, keys, "w1", session, silentLogger);
    const seen = await client.put(keys.task("w1", "kept")).value("{}").exec();
    const moved = await client.put(keys.task("w1", "moved")).value("{}").exec();
    // The master hands "moved" off: it deletes the key before the worker's claim arrives.
    await client.delete().key(keys.task("w1", "moved")).exec();

    const [kept, refused] = await Promise.all([
      writer.claim("kept", starting, Number(seen.header.revision)),
      writer.claim("moved", starting, Number(moved.header.revision)),
    ]);

    expect(kept.claimed).toBe(true);
    expect(refused).toEqual({ claimed: false });
    expect(await client.get(keys.status("w1", "kept")).string()).toContain("starting");
    expect(await client.get(keys.status("w1", "moved")).string()).toBeNull();
    await session.close();
  });

  it("lands every other write of the transaction when some claims are refused", async () => {
    const { client, keys } = testSpace("claim-batch");
    const session = await LeaseSession.grant(client, { ttlMs: 5_000 });
    // A claim requires the worker's registration under its lease.
    await client.put(keys.worker("w1")).value("{}").lease(session.id);
    const writer = new StatusWriter(client, keys, "w1", session, silentLogger);
    const ids = ["a", "b", "c", "d"];
    const seen = await Promise.all(ids.map((id) => client.put(keys.task("w1", id)).value("{}").exec()));
    // "b" is handed off and "d" rewritten before the worker's claims arrive.
    await client.delete().key(keys.task("w1", "b")).exec();
    await client.put(keys.task("w1", "d")).value("{}").exec();

    const [claimed] = await Promise.all([
      Promise.all(ids.map((id, i) => writer.claim(id, starting, Number(seen[i]?.header.revision)))),
      writer.put("plain", starting),
    ]);

    expect(claimed.map((result) => result.claimed)).toEqual([true, false, true, false]);
    const stored = await client.getAll().prefix(keys.workerStatusPrefix("w1")).keys();
    expect(stored.sort()).toEqual(["a", "c", "plain"].map((id) => keys.status("w1", id)));
    await session.close();
  });
});
