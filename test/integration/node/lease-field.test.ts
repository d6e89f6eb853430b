import { describe, expect, it } from "vitest";
import { LeaseSession, leaseField } from "../../../src/node/index.js";
import { testSpace } from "../../helpers/context.js";

describe("a lease id in the form its requests carry it (leaseField), against etcd", () => {
  it("puts a key under the lease and compares equal to it, as the decimal id does", async () => {
    const { client, keys } = testSpace("lease-field");
    const session = await LeaseSession.grant(client, { ttlMs: 5_000 });
    const lease = leaseField(session.id);
    const key = Buffer.from(keys.worker("w1"));
    await client.kv.txn({
      compare: [],
      success: [{ request_put: { key, value: Buffer.from("x"), lease } }],
      failure: [],
    });
    const [stored] = (await client.kv.range({ key })).kvs;
    expect(stored?.lease).toBe(session.id);
    const compare = (value: string | number) => ({
      key,
      target: "Lease" as const,
      result: "Equal" as const,
      lease: value,
    });
    const held = await client.kv.txn({ compare: [compare(lease)], success: [], failure: [] });
    const other = await client.kv.txn({ compare: [compare(leaseField("1"))], success: [], failure: [] });
    expect([held.succeeded, other.succeeded]).toEqual([true, false]);
    await session.close();
  });
});
