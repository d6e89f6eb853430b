import type { IRequestOp } from "etcd3";

import { MAX_TXN_BYTES, MAX_TXN_OPS } from "../node/index.js";

export { MAX_TXN_BYTES, MAX_TXN_OPS };

/**
 * One key write of a schedule; ops with a `priority` are committed after every op of a strictly higher
 * one. A delete's `rawKey` names a key whose bytes are not UTF-8 (`key` is then only its text form).
 * `with` are writes that must land in the same transaction (a move record with the task key it moves).
 */
export type WriteOp = (
  { type: "put"; key: string; value: string } | { type: "delete"; key: string; rawKey?: Buffer }
) & {
  priority?: number;
  with?: readonly WriteOp[];
};

/** Splits `ops` in order into transactions of at most `maxOps` operations and `maxBytes` of keys and values. */
export function intoBatches(
  ops: readonly WriteOp[],
  maxOps = MAX_TXN_OPS,
  maxBytes = MAX_TXN_BYTES,
): WriteOp[][] {
  const batches: WriteOp[][] = [];
  let current: WriteOp[] = [];
  let currentOps = 0;
  let currentBytes = 0;
  for (const op of ops) {
    const bytes = opBytes(op) + (op.with ?? []).reduce((sum, other) => sum + opBytes(other), 0);
    const count = 1 + (op.with?.length ?? 0);
    if (current.length > 0 && (currentOps + count > maxOps || currentBytes + bytes > maxBytes)) {
      batches.push(current);
      current = [];
      currentOps = 0;
      currentBytes = 0;
    }
    current.push(op);
    currentOps += count;
    currentBytes += bytes;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

/** The etcd operations of `op`: itself, then the writes it carries `with` it. */
export function toRequestOps(op: WriteOp): IRequestOp[] {
  const own: IRequestOp =
    op.type === "put"
      ? { request_put: { key: Buffer.from(op.key), value: Buffer.from(op.value) } }
      : { request_delete_range: { key: op.rawKey ?? Buffer.from(op.key) } };
  return op.with ? [own, ...op.with.flatMap(toRequestOps)] : [own];
}

function opBytes(op: WriteOp): number {
  // Key and value dominate; 16 bytes cover the protobuf framing of one operation.
  return Buffer.byteLength(op.key) + (op.type === "put" ? Buffer.byteLength(op.value) : 0) + 16;
}
