import { type CallOptions, InterceptingCall, type Interceptor } from "@grpc/grpc-js";
import type { CallContext } from "etcd3";

/** Bounds every unary etcd request, so a black-holed connection or a member without quorum cannot hold a caller for long. */
export const REQUEST_TIMEOUT_MS = 15_000;

/** Call options of one unary etcd request: a deadline `ms` from now. */
export function requestDeadline(ms = REQUEST_TIMEOUT_MS): { deadline: number } {
  return { deadline: Date.now() + ms };
}

/**
 * etcd's require-leader metadata (Go clientv3's `WithRequireLeader`): a member cut off from its
 * quorum ends the watch with "no leader" instead of keeping it open and silent, so the watcher
 * reconnects, through another member if there is one.
 */
export const requireLeader: Interceptor = (options, nextCall) =>
  new InterceptingCall(nextCall(options), {
    start(metadata, listener, next) {
      metadata.set("hasleader", "true");
      next(metadata, listener);
    },
  });

/** Options of every call of a client made by `createEtcdClient`: unary requests get a deadline, watches require a leader. */
export function defaultCallOptions(context: CallContext): CallOptions {
  if (!context.isStream) return requestDeadline();
  return context.service === "Watch" ? { interceptors: [requireLeader] } : {};
}

/**
 * A lease id for the many operations of one session (each key it writes, each compare on it): the
 * 64-bit id once as `{ low, high }`, which etcd's protobuf encoder takes as it is, where it parses
 * the decimal string again for every operation. It prints as the id; typed as the string it stands for.
 */
export function leaseField(id: string): string {
  const value = BigInt.asIntN(64, BigInt(id));
  const low = Number(BigInt.asIntN(32, value));
  const high = Number(BigInt.asIntN(32, value >> 32n));
  return { low, high, unsigned: false, toString: () => id } as unknown as string;
}
