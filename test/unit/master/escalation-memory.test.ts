import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { describe, expect, it } from "vitest";
import { withRestartPolicy } from "../../../src/master/escalation.js";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

describe("the escalation's view of a task", () => {
  it("costs a few dozen bytes a task: 100,000 tasks' fingerprints-to-be hold under 10 MB", () => {
    const defaults = { limit: 0, window: 60_000, quarantineAfter: 0 };
    const tasks = Array.from({ length: 100_000 }, (_, t) => {
      const task = { id: `task-${String(t).padStart(6, "0")}` };
      return { task, value: JSON.stringify(task), bytes: 20 };
    });
    gc();
    const before = process.memoryUsage().heapUsed;
    const kept = tasks.map((valid) => withRestartPolicy(valid, defaults).escalation);
    gc();
    const grownMB = (process.memoryUsage().heapUsed - before) / 1024 / 1024;
    expect(kept).toHaveLength(100_000);
    expect(grownMB).toBeLessThan(10);
    // Still hashed on demand, once.
    expect(kept[0]?.fingerprint).toMatch(/^[0-9a-f]{32}$/);
    expect(kept[0]?.fingerprint).toBe(kept[0]?.fingerprint);
  });
});
