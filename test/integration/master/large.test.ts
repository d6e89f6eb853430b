import { describe, expect, it } from "vitest";
import type { ScheduleResult } from "../../../src/master/index.js";
import { LeaseSession, type PlanRecord, parseRecord, type Task } from "../../../src/node/index.js";
import { testSpace, waitFor } from "../../helpers/context.js";
import { testMaster } from "./fixtures.js";

const TASKS = 50_000;

describe("a large schedule", () => {
  it("applies 50,000 tasks over 4 workers: every key present, right count, balanced", async () => {
    const space = testSpace("large");
    // Registrations only: nobody reports statuses, so the hand-off check has nothing to wait for.
    const session = await LeaseSession.grant(space.client, { ttlMs: 10_000 });
    const workers = ["w1", "w2", "w3", "w4"];
    for (const name of workers)
      await session.lease.put(space.keys.worker(name)).value(JSON.stringify({ name }));
    const generated: Task[] = Array.from({ length: TASKS }, (_, i) => ({
      id: `task-${i}`,
      group: `g${i % 5}`,
      priority: i % 2,
      payload: { shard: i },
    }));
    const master = testMaster(space, () => generated, { timeoutMs: 30_000, ttlMs: 10_000 });
    const schedules: ScheduleResult[] = [];
    master.on("scheduled", (result) => schedules.push(result));
    try {
      await master.start();
      await waitFor("the first schedule", () => schedules.length === 1, 60_000, 50);
      expect(schedules[0]).toMatchObject({
        tasks: TASKS,
        added: TASKS,
        removed: 0,
        unassigned: 0,
        workers: 4,
      });

      const perWorker = new Map<string, number>();
      const ids = new Set<string>();
      const response = await space.client.getAll().prefix(space.keys.tasksPrefix).exec();
      expect(response.kvs).toHaveLength(TASKS);
      for (const kv of response.kvs) {
        const parts = space.keys.parseTask(kv.key.toString())!;
        ids.add(parts.taskId);
        perWorker.set(parts.worker, (perWorker.get(parts.worker) ?? 0) + 1);
        expect(JSON.parse(kv.value.toString()).id).toBe(parts.taskId);
      }
      expect(ids.size).toBe(TASKS);
      expect([...perWorker.values()]).toEqual([TASKS / 4, TASKS / 4, TASKS / 4, TASKS / 4]);
      const plan = parseRecord<PlanRecord>(await space.client.get(space.keys.plan).string());
      expect(plan).toMatchObject({ tasks: TASKS, workers });

      // Nothing changed: the next schedule writes no task key. (On a loaded machine the master may lose and
      // win its leadership meanwhile — scheduleNow then answers undefined; the next leader's schedule must
      // write nothing either, and every schedule since the first must have changed nothing.)
      const again = await waitFor("a schedule by the leader", () => master.scheduleNow("again"), 60_000, 200);
      expect(again).toMatchObject({ added: 0, updated: 0, removed: 0 });
      for (const later of schedules.slice(1))
        expect(later).toMatchObject({ added: 0, updated: 0, removed: 0 });
    } finally {
      await master.stop();
      await space.client.delete().prefix(space.keys.prefix).exec();
      await session.close();
    }
  });
});
