import { describe, expect, it } from "vitest";
import { plan } from "../../../src/balancer/index.js";
import { intoBatches } from "../../../src/master/batches.js";
import { type CurrentAssignment, scheduleChanges } from "../../../src/master/changes.js";
import { validateTasks } from "../../../src/master/validation.js";
import { keyLayout, type Task } from "../../../src/node/index.js";

const keys = keyLayout("r");

function changesFor(workers: string[], generated: Task[], current: CurrentAssignment) {
  const valid = validateTasks(generated);
  const byId = new Map(valid.map((v) => [v.task.id, v]));
  const target = plan({
    workers,
    tasks: generated,
    current: new Map([...current].map(([w, ids]) => [w, [...ids.keys()]])),
  });
  return scheduleChanges(keys, target, byId, current);
}

describe("scheduleChanges", () => {
  it("writes nothing when etcd already holds the plan with the same values", () => {
    const generated = [{ id: "a" }, { id: "b" }];
    const current: CurrentAssignment = new Map([
      ["w1", new Map([["a", JSON.stringify({ id: "a" })]])],
      ["w2", new Map([["b", JSON.stringify({ id: "b" })]])],
    ]);
    expect(changesFor(["w1", "w2"], generated, current)).toMatchObject({
      removals: [],
      puts: [],
      added: 0,
      updated: 0,
      moved: 0,
    });
  });

  it("re-puts a task whose stored value differs, on the worker that has it", () => {
    const current: CurrentAssignment = new Map([
      ["w1", new Map([["a", JSON.stringify({ id: "a", payload: 1 })]])],
    ]);
    const changes = changesFor(["w1"], [{ id: "a", payload: 2 }], current);
    expect(changes).toMatchObject({ added: 0, updated: 1, removed: 0 });
    expect(changes.puts).toEqual([
      { taskId: "a", worker: "w1", key: keys.task("w1", "a"), value: '{"id":"a","payload":2}', priority: 0 },
    ]);
  });

  it("removes tasks of gone workers and tasks no longer generated, and counts a move", () => {
    const current: CurrentAssignment = new Map([
      ["gone", new Map([["a", '{"id":"a"}']])],
      ["w1", new Map([["old", '{"id":"old"}']])],
    ]);
    const changes = changesFor(["w1"], [{ id: "a" }], current);
    expect(changes.removals.map((op) => op.key).sort()).toEqual([
      keys.task("gone", "a"),
      keys.task("w1", "old"),
    ]);
    expect(changes).toMatchObject({ added: 1, removed: 2, moved: 1 });
  });

  it("orders puts of all workers by priority", () => {
    const generated = Array.from({ length: 8 }, (_, i) => ({ id: `t${i}`, priority: i % 2 }));
    const changes = changesFor(["w1", "w2"], generated, new Map());
    expect(changes.puts.map((put) => put.priority)).toEqual([1, 1, 1, 1, 0, 0, 0, 0]);
  });

  it("keeps each worker's additions together within a priority, so one transaction feeds few workers", () => {
    const workers = Array.from({ length: 20 }, (_, i) => `w${i}`);
    const generated = Array.from({ length: 4_000 }, (_, i) => ({ id: `t${i}`, priority: i % 3 }));
    const changes = changesFor(workers, generated, new Map());
    // Within each priority, a worker's puts form one run.
    const runs = new Map<string, number>();
    changes.puts.forEach((put, i) => {
      const previous = changes.puts[i - 1];
      if (previous?.worker === put.worker && previous.priority === put.priority) return;
      const run = `${put.priority}/${put.worker}`;
      runs.set(run, (runs.get(run) ?? 0) + 1);
    });
    expect([...runs.values()].every((count) => count === 1)).toBe(true);
    // 200 tasks per worker: no 128-op transaction carries more than two workers (interleaved, each carried all 20).
    const batches = intoBatches(changes.puts.map((put) => ({ type: "put" as const, ...put })));
    expect(
      Math.max(...batches.map((batch) => new Set(batch.map((op) => op.key.split("/")[3])).size)),
    ).toBeLessThanOrEqual(2);
  });

  it("without any live worker removes every current assignment and places nothing", () => {
    const current: CurrentAssignment = new Map([["w1", new Map([["a", '{"id":"a"}']])]]);
    const valid = validateTasks([{ id: "a" }]);
    const changes = scheduleChanges(keys, undefined, new Map(valid.map((v) => [v.task.id, v])), current);
    expect(changes).toMatchObject({ removed: 1, added: 0, puts: [] });
  });
});
