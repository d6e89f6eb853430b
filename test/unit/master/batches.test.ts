import { describe, expect, it } from "vitest";
import {
  intoBatches,
  MAX_TXN_BYTES,
  MAX_TXN_OPS,
  toRequestOps,
  type WriteOp,
} from "../../../src/master/batches.js";

const put = (i: number, size = 10): WriteOp => ({
  type: "put",
  key: `/r/task/w/${i}`,
  value: "v".repeat(size),
});

describe("intoBatches", () => {
  it("keeps order and cuts at 128 operations", () => {
    const ops = Array.from({ length: 300 }, (_, i) => put(i));
    const batches = intoBatches(ops);
    expect(batches.map((b) => b.length)).toEqual([MAX_TXN_OPS, MAX_TXN_OPS, 300 - 2 * MAX_TXN_OPS]);
    expect(batches.flat()).toEqual(ops);
  });

  it("cuts before a batch would exceed 1 MiB of keys and values", () => {
    const ops = Array.from({ length: 5 }, (_, i) => put(i, 300 * 1024));
    const batches = intoBatches(ops);
    expect(batches.map((b) => b.length)).toEqual([3, 2]);
    for (const batch of batches) {
      const bytes = batch.reduce(
        (sum, op) => sum + op.key.length + (op.type === "put" ? op.value.length : 0),
        0,
      );
      expect(bytes).toBeLessThanOrEqual(MAX_TXN_BYTES);
    }
  });

  it("gives a single value near the limit a transaction of its own", () => {
    const batches = intoBatches([put(0), put(1, MAX_TXN_BYTES - 20), put(2)]);
    expect(batches.map((b) => b.length)).toEqual([1, 1, 1]);
  });

  it("keeps the writes an op carries `with` it in its transaction, and counts them against the 128", () => {
    const removal = (i: number): WriteOp => ({
      type: "delete",
      key: `/r/task/w/${i}`,
      with: [{ type: "put", key: `/r/move/${i}`, value: "{}" }],
    });
    const ops = Array.from({ length: 100 }, (_, i) => removal(i));
    const batches = intoBatches(ops);
    expect(batches.map((b) => b.length)).toEqual([MAX_TXN_OPS / 2, 100 - MAX_TXN_OPS / 2]);
    expect(batches[0].flatMap(toRequestOps)).toHaveLength(MAX_TXN_OPS);
    expect(
      toRequestOps(removal(7)).map((op) => String(op.request_delete_range?.key ?? op.request_put?.key)),
    ).toEqual(["/r/task/w/7", "/r/move/7"]);
  });

  it("returns nothing for nothing", () => {
    expect(intoBatches([])).toEqual([]);
  });
});
