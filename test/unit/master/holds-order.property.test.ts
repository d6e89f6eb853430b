import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { runSchedule, type ScheduleContext } from "../../../src/master/schedule.js";
import { KeyLayout, silentLogger, type Task } from "../../../src/node/index.js";
import { ModelEtcd } from "./model-etcd.js";
import {
  type FleetModel,
  type FleetReal,
  Join,
  lead,
  LeaseGone,
  leaseOf,
  Pause,
  reactingWorkers,
  Resume,
  settle,
} from "./schedule-model.js";

/**
 * A crashed worker's hold and the moves it comes with, in any interleaving: the real runSchedule over
 * the model etcd (every request and worker reaction released in an order fast-check picks) with
 * `--reassign-delay`, while workers join and crash (lease gone) and the operator pauses and resumes.
 * Invariants:
 * - whenever a schedule moves a task off a crashed worker for its crash while a task it holds stays
 *   listed there, the worker's hold record `/R/held/<worker>` exists: its short-`maxDowntime` tasks never
 *   run elsewhere while the rest look unheld (on the code that wrote new holds with the plan, after the
 *   moves, they did);
 * - once settled and resumed, every short task is on one registered worker, every held task on one worker.
 */

const keys = new KeyLayout("r");
const TASKS: Task[] = ["t0", "t1", "t2", "t3", "t4", "t5"].map((id, i) =>
  i % 2 === 0 ? { id, maxDowntime: "1s" } : { id },
);
const SHORT = new Set(TASKS.filter((task) => task.maxDowntime).map((task) => task.id));

interface Real extends FleetReal {
  violations: string[];
}

/**
 * Checks every commit: a move off a crashed worker made for its crash (the put elsewhere and the removal
 * in one commit: a schedule that read the worker gone) while a task it holds stays listed there needs its
 * hold record. A hand-off a schedule began while the worker was still registered is not one.
 */
function watchHolds(etcd: ModelEtcd, violations: string[]): void {
  etcd.onCommit((commit) => {
    const putElsewhere = new Set<string>();
    for (const event of commit.events) {
      const task = keys.parseTask(event.key);
      if (task && event.type === "put") putElsewhere.add(task.taskId);
    }
    for (const event of commit.events) {
      const task = keys.parseTask(event.key);
      if (!task || event.type !== "delete" || !putElsewhere.has(task.taskId)) continue;
      if (etcd.kvs.has(keys.worker(task.worker))) continue;
      const heldLeft = etcd
        .keysUnder(keys.workerTasksPrefix(task.worker))
        .some((key) => !SHORT.has(keys.parseTask(key)?.taskId ?? ""));
      if (heldLeft && !etcd.kvs.has(keys.held(task.worker)))
        violations.push(`@${commit.revision} ${event.key} moved before ${task.worker}'s hold was recorded`);
    }
  });
}

async function setup(s: fc.Scheduler): Promise<Real> {
  const etcd = new ModelEtcd(s);
  const violations: string[] = [];
  const leader = await lead(etcd, keys, "m1", violations);
  reactingWorkers(s, etcd, keys);
  watchHolds(etcd, violations);
  const context: ScheduleContext = {
    client: etcd.client(),
    keys,
    leader: "m",
    epoch: 1,
    writer: leader.writer,
    generator: () => TASKS,
    timeoutMs: 60_000,
    handoffs: leader.gate,
    pacer: leader.pacer,
    maxMoving: "100%",
    maxRemovalPercent: 100,
    holds: { delayMs: 60_000, arm: () => undefined },
    liveWorkers: () => [],
    logger: silentLogger,
    signal: leader.stop.signal,
  };
  let chain = Promise.resolve();
  const schedule = () => {
    chain = chain.then(() =>
      runSchedule(context, ["workers"]).then(
        () => undefined,
        (error: { code?: string }) => {
          if (error.code !== "ERR_PAUSED") violations.push(`schedule failed: ${String(error)}`);
        },
      ),
    );
  };
  for (const worker of ["w1", "w2"])
    etcd.write([{ type: "put", key: keys.worker(worker), value: "{}", lease: leaseOf(worker) }]);
  schedule();
  await settle(s);
  return { etcd, keys, reschedule: schedule, violations };
}

const commands = fc.commands(
  [
    fc.constantFrom("w3", "w4").map((worker) => new Join<Real>(worker)),
    // A crash, the schedule for it following unless paused.
    fc.constantFrom("w1", "w2", "w3", "w4").map((worker) => new LeaseGone<Real>(worker, true)),
    fc.constant(new Pause<Real>()),
    fc.constant(new Resume<Real>()),
  ],
  { maxCommands: 7 },
);

describe("a crashed worker's hold and its moves, any interleaving (property)", () => {
  it("the hold is recorded before any task moves off the worker; short tasks end on live workers", async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), commands, async (s, cmds) => {
        const real = await setup(s);
        const model: FleetModel = { paused: false, workers: new Set(["w1", "w2"]) };
        await fc.scheduledModelRun(s, () => ({ model, real }), cmds);
        await settle(s);
        if (model.paused) await new Resume<Real>().run(model, real);
        await settle(s);
        expect(real.violations).toEqual([]);
        const placed = real.etcd.keysUnder(keys.tasksPrefix).map((key) => keys.parseTask(key));
        for (const task of TASKS) {
          const on = placed.filter((parts) => parts?.taskId === task.id).map((parts) => parts?.worker);
          expect(on, task.id).toHaveLength(1);
          const live = model.workers.has(String(on[0]));
          if (SHORT.has(task.id)) expect(live, `${task.id} on ${on[0]}`).toBe(true);
          else if (!live) expect(real.etcd.kvs.has(keys.held(String(on[0]))), task.id).toBe(true);
        }
      }),
      { numRuns: 200 },
    );
  });
});
