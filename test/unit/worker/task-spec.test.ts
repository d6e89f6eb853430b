import { describe, expect, it } from "vitest";
import { taskSpec } from "../../../src/worker/task-spec.js";

describe("a task value as the worker reads it", () => {
  it("a change of the restart policy alone keeps the fingerprint (nothing restarts); any other change does not", () => {
    const plain = taskSpec("t", '{"id":"t","payload":1}', 1);
    const limited = taskSpec("t", '{"id":"t","payload":1,"restart":{"limit":2,"window":60000}}', 2);
    const other = taskSpec("t", '{"id":"t","payload":1,"restart":{"limit":5,"window":1000}}', 3);
    const changed = taskSpec("t", '{"id":"t","payload":2,"restart":{"limit":2,"window":60000}}', 4);
    expect(limited.fingerprint).toBe(plain.fingerprint);
    expect(other.fingerprint).toBe(plain.fingerprint);
    expect(changed.fingerprint).not.toBe(plain.fingerprint);
  });
});
