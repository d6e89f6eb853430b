import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FencedWriter, leaderFence } from "../../../src/master/fencing.js";
import { HandoffGate, type PlannedPut } from "../../../src/master/handoff.js";
import { type Move, MovePacer } from "../../../src/master/pacing.js";
import { KeyLayout, silentLogger } from "../../../src/node/index.js";
import { ModelEtcd } from "./model-etcd.js";
import { leaseOf, settle } from "./schedule-model.js";

/**
 * HandoffGate and MovePacer alone, in any interleaving of watch deliveries, reads, transactions and
 * worker reactions (fc.scheduler), under random moves, stops, a lease loss, schedules deciding on the
 * holds (freeze, maybe re-target, thaw) and dropped queues (fc.commands). The old owner w1 stops a
 * removed task only when told, and has reported some tasks and not others.
 *
 * Invariants:
 * - a task is written to a new worker only while no other worker holds a status for it, and never
 *   has statuses on two workers (hand-off);
 * - never more than max-moving tasks between owners (removed, not yet written again);
 * - once the old owner has stopped every removed task (or its lease went), and without any further
 *   event, every hold has ended and every task is assigned to exactly one worker: no hold waits for a
 *   status event that cannot come (defect 3 on the old code: a task the old owner never reported).
 */

const keys = new KeyLayout("r");
const TASKS = ["t0", "t1", "t2", "t3", "t4"];

interface Model {
  /** Tasks handed to the pacer (queued or moving). */
  paced: Set<string>;
}

interface Real {
  etcd: ModelEtcd;
  gate: HandoffGate;
  pacer: MovePacer;
  limit: number;
  violations: string[];
  decide(retarget: boolean): void;
}

function put(worker: string, taskId: string): PlannedPut {
  return { taskId, worker, key: keys.task(worker, taskId), value: "{}", priority: 0 };
}

function checkEveryCommit(etcd: ModelEtcd, limit: number, violations: string[]): void {
  const taskKeys = (id: string) =>
    etcd.keysUnder(keys.tasksPrefix).filter((key) => keys.parseTask(key)?.taskId === id);
  const statuses = (id: string) =>
    etcd.keysUnder(keys.statusPrefix).filter((key) => keys.parseStatus(key)?.taskId === id);
  etcd.onCommit((commit) => {
    for (const event of commit.events) {
      const task = keys.parseTask(event.key);
      if (task && event.type === "put") {
        const others = statuses(task.taskId).filter((key) => keys.parseStatus(key)?.worker !== task.worker);
        if (others.length > 0)
          violations.push(`@${commit.revision} ${event.key} written while ${others.join(" ")}`);
      }
      const status = keys.parseStatus(event.key);
      if (status && statuses(status.taskId).length > 1)
        violations.push(
          `@${commit.revision} ${status.taskId} has statuses ${statuses(status.taskId).join(" ")}`,
        );
    }
    const between = TASKS.filter((id) => taskKeys(id).length === 0).length;
    if (between > limit)
      violations.push(`@${commit.revision} ${between} tasks between owners (max-moving ${limit})`);
  });
}

async function setup(s: fc.Scheduler, reported: boolean[], limit: number): Promise<Real> {
  const etcd = new ModelEtcd(s);
  const violations: string[] = [];
  const signal = new AbortController().signal;
  const election = `${keys.electionCandidatesPrefix}m`;
  const created = etcd.write([{ type: "put", key: election, value: "m", lease: "1" }]);
  const writer = new FencedWriter(etcd.client(), leaderFence(election, created), { pausedKey: keys.paused });
  let pacer: MovePacer | undefined;
  const gate = new HandoffGate(etcd.statusSource(keys.statusPrefix), keys, writer, {
    logger: silentLogger,
    onReleased: () => pacer?.refill(signal),
    onWriteFailed: (error) => violations.push(`hand-off write failed: ${String(error)}`),
  });
  pacer = new MovePacer(keys, gate, writer, {
    logger: silentLogger,
    onFailed: (error) => violations.push(`paced move failed: ${String(error)}`),
  });
  etcd.write([
    ...["w1", "w2", "w3"].map((w) => ({
      type: "put" as const,
      key: keys.worker(w),
      value: "{}",
      lease: leaseOf(w),
    })),
    ...TASKS.map((id) => ({ type: "put" as const, key: keys.task("w1", id), value: "{}" })),
    ...TASKS.filter((_, i) => reported[i]).map((id) => ({
      type: "put" as const,
      key: keys.status("w1", id),
      value: "running",
      lease: leaseOf("w1"),
    })),
  ]);
  await gate.start(signal);
  checkEveryCommit(etcd, limit, violations);
  // w2 and w3 claim what they are given (only while the key is there); w1 stops only when told.
  etcd.onCommit((commit) => {
    for (const event of commit.events) {
      const task = keys.parseTask(event.key);
      if (!task || task.worker === "w1" || event.type !== "put") continue;
      void s.schedule(Promise.resolve(), `${task.worker} claims ${task.taskId}`).then(() => {
        if (etcd.kvs.has(event.key))
          etcd.write([
            {
              type: "put",
              key: keys.status(task.worker, task.taskId),
              value: "running",
              lease: leaseOf(task.worker),
            },
          ]);
      });
    }
  });
  let deciding = Promise.resolve();
  // What a schedule does with the holds it read: freeze, decide (maybe elsewhere), thaw.
  const decide = (retarget: boolean) => {
    deciding = deciding.then(async () => {
      await gate.freeze();
      await s.schedule(Promise.resolve(), "a schedule decides");
      if (retarget) gate.replan(new Map([...gate.held().keys()].map((id) => [id, put("w3", id)])));
      gate.thaw();
    });
  };
  return { etcd, gate, pacer, limit, violations, decide };
}

class Pace implements fc.AsyncCommand<Model, Real> {
  constructor(readonly ids: string[]) {}
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    const moves: Move[] = this.ids
      .filter((id) => real.etcd.kvs.has(keys.task("w1", id)) && !model.paced.has(id))
      .map((id) => ({
        from: "w1",
        removal: { type: "delete", key: keys.task("w1", id) },
        put: put("w2", id),
      }));
    for (const move of moves) model.paced.add(move.put.taskId);
    void real.pacer.pace(moves, real.limit, new AbortController().signal);
  }
  toString = () => `pace(${this.ids.join(",")})`;
}

/** w1 stops a task it no longer has: its status goes. */
class Stop implements fc.AsyncCommand<Model, Real> {
  constructor(readonly id: string) {}
  check = () => true;
  async run(_model: Model, real: Real): Promise<void> {
    const status = keys.status("w1", this.id);
    if (!real.etcd.kvs.has(keys.task("w1", this.id)) && real.etcd.kvs.has(status))
      real.etcd.write([{ type: "delete", key: status }]);
  }
  toString = () => `stop(${this.id})`;
}

class LeaseGone implements fc.AsyncCommand<Model, Real> {
  check = () => true;
  async run(_model: Model, real: Real): Promise<void> {
    const gone = [keys.worker("w1"), ...real.etcd.keysUnder(keys.workerStatusPrefix("w1"))];
    real.etcd.write(gone.map((key) => ({ type: "delete" as const, key })));
  }
  toString = () => "leaseGone(w1)";
}

class Decide implements fc.AsyncCommand<Model, Real> {
  constructor(readonly retarget: boolean) {}
  check = () => true;
  async run(_model: Model, real: Real): Promise<void> {
    real.decide(this.retarget);
  }
  toString = () => `schedule(${this.retarget ? "re-target to w3" : "refused"})`;
}

class DropQueue implements fc.AsyncCommand<Model, Real> {
  check = () => true;
  async run(_model: Model, real: Real): Promise<void> {
    void real.pacer.cancelPending();
  }
  toString = () => "pause (queue dropped)";
}

const commands = fc.commands(
  [
    fc.subarray(TASKS, { minLength: 1 }).map((ids) => new Pace(ids)),
    fc.constantFrom(...TASKS).map((id) => new Stop(id)),
    fc.constant(new LeaseGone()),
    fc.boolean().map((retarget) => new Decide(retarget)),
    fc.constant(new DropQueue()),
  ],
  { maxCommands: 8 },
);

describe("HandoffGate and MovePacer, any interleaving (property)", () => {
  it("hand-offs never overlap, at most max-moving between owners, and no hold waits for an event that cannot come", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        commands,
        fc.array(fc.boolean(), { minLength: TASKS.length, maxLength: TASKS.length }),
        fc.integer({ min: 1, max: 3 }),
        async (s, cmds, reported, limit) => {
          const real = await setup(s, reported, limit);
          await fc.scheduledModelRun(s, () => ({ model: { paced: new Set<string>() }, real }), cmds);
          await settle(s);
          // The old owner stops every task it no longer has; nothing else happens after that.
          for (;;) {
            const stopping = TASKS.filter(
              (id) => !real.etcd.kvs.has(keys.task("w1", id)) && real.etcd.kvs.has(keys.status("w1", id)),
            );
            if (stopping.length === 0) break;
            real.etcd.write(stopping.map((id) => ({ type: "delete" as const, key: keys.status("w1", id) })));
            await settle(s);
          }
          const placed = real.etcd.keysUnder(keys.tasksPrefix).map((key) => keys.parseTask(key)?.taskId);
          expect(real.violations).toEqual([]);
          expect(real.gate.unsettled).toBe(0);
          expect(TASKS.map((id) => [id, placed.filter((taskId) => taskId === id).length])).toEqual(
            TASKS.map((id) => [id, 1]),
          );
        },
      ),
      { numRuns: 200 },
    );
  });
});
