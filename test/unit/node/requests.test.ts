import type { CallContext } from "etcd3";
import { describe, expect, it } from "vitest";
import {
  defaultCallOptions,
  leaseField,
  REQUEST_TIMEOUT_MS,
  requireLeader,
} from "../../../src/node/requests.js";

const context = (fields: Record<string, unknown>) => ({ params: {}, ...fields }) as unknown as CallContext;

describe("default call options of every etcd client", () => {
  it("gives every unary request a deadline", () => {
    const before = Date.now();
    const options = defaultCallOptions(context({ service: "KV", method: "txn", isStream: false }));
    expect(Number(options.deadline)).toBeGreaterThanOrEqual(before + REQUEST_TIMEOUT_MS);
    expect(Number(options.deadline)).toBeLessThanOrEqual(Date.now() + REQUEST_TIMEOUT_MS);
  });

  it("opens every watch with etcd's require-leader metadata, and no deadline", () => {
    const options = defaultCallOptions(context({ service: "Watch", method: "watch", isStream: true }));
    expect(options).toEqual({ interceptors: [requireLeader] });
  });

  it("leaves other streams (lease keep-alives) to their callers", () => {
    expect(
      defaultCallOptions(context({ service: "Lease", method: "leaseKeepAlive", isStream: true })),
    ).toEqual({});
  });
});

describe("a lease id in the form its requests carry it (leaseField)", () => {
  it("holds the 64-bit id as low and high 32 bits and prints as the id", () => {
    for (const id of ["1", "4294967295", "4294967296", "7587861416356391702", "9223372036854775807"]) {
      const field = leaseField(id) as unknown as { low: number; high: number; unsigned: boolean };
      const value = (BigInt(field.high) << 32n) | BigInt(field.low >>> 0);
      expect([value.toString(), field.unsigned, String(field)]).toEqual([id, false, id]);
    }
  });
});
