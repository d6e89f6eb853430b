import { GRPCUnavailableError } from "etcd3";
import { describe, expect, it } from "vitest";
import { isTransientEtcdError } from "../../../src/node/index.js";

describe("isTransientEtcdError (what a later attempt can cure)", () => {
  it("counts etcd's answers during a leader change or overload as transient, whatever their gRPC code", () => {
    for (const message of [
      "etcdserver: no leader",
      "etcdserver: leader changed",
      "etcdserver: request timed out",
      "etcdserver: too many requests",
      "context deadline exceeded",
      // etcd 3.4's answer to a write proposed while its leadership moves (a moveLeader, an isolated leader).
      "2 UNKNOWN: raft proposal dropped",
    ])
      expect({ message, transient: isTransientEtcdError(new Error(message)) }).toEqual({
        message,
        transient: true,
      });
  });

  it("does not count refusals a retry cannot cure", () => {
    for (const error of [
      new Error("etcdserver: permission denied"),
      new Error("etcdserver: authentication failed, invalid user ID or password"),
      new GRPCUnavailableError("14 UNAVAILABLE: TLS handshake failed"),
    ])
      expect(isTransientEtcdError(error)).toBe(false);
  });
});
