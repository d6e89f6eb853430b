import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { resumeBegunMoves } from "../../../src/master/begun-moves.js";
import type { MaxMoving } from "../../../src/master/pacing.js";
import { runSchedule, type ScheduleContext } from "../../../src/master/schedule.js";
import { KeyLayout, silentLogger, type Task } from "../../../src/node/index.js";
import { type Commit, ModelEtcd } from "./model-etcd.js";
import {
  type FleetModel,
  type FleetReal,
  Join,
  lead,
  type Leader,
  LeaseGone,
  leaseOf,
  Pause,
  reactingWorkers,
  Resume,
  settle,
} from "./schedule-model.js";

/**
 * The leader's schedules, hand-offs, paced moves and the operator's controls, in any interleaving: the
 * real runSchedule, HandoffGate, MovePacer and FencedWriter over a model etcd whose every request, watch
 * delivery and worker reaction is released in an order fast-check picks (fc.scheduler), while
 * fc.commands drives workers joining and leaving (lease gone, or only the registration while the tasks
 * run), schedules (some refused by the removal guard), pause and resume, and the leader dying (its
 * election key gone, its gate and pacer dropped at once, as after SIGKILL) with a new leader taking over:
 * it resumes the moves begun from their records (/R/move/<taskId>) before its first schedule. Workers
 * claim a task put under them and delete its status once it is removed. Invariants, each checked on every commit or once everything has settled:
 * - no task ever has a status on two workers at once (hand-off);
 * - while `/R/paused` exists, no commit deletes a task key, adds a task never placed before, or writes
 *   `/R/plan` or history; the only task writes are completions: a put of a task assigned nowhere
 *   (defect 2 on the old code: a schedule that read before the pause kept writing);
 * - once settled, every task of the base set is assigned to exactly one worker — a move already begun
 *   always finishes, whatever a later schedule decides (defect 1 on the old code: a refused or paused
 *   schedule dropped held hand-offs), and no hold waits for a status event that cannot come (defect 3
 *   on the old code: an old owner that never reported, or whose lease went before the removal), and
 *   across a leader change too: no move record is left (on the code before move records, a leader dying
 *   between a removal and its completion left the task nowhere once a later schedule was refused or paused).
 */

const keys = new KeyLayout("r");
const BASE = ["t0", "t1", "t2", "t3", "t4", "t5"];
const EXTRA = ["x0", "x1"];
type Generated = "base" | "more" | "empty";
const generated: Record<Generated, string[]> = { base: BASE, more: [...BASE, ...EXTRA], empty: [] };

type Model = FleetModel;

interface Real extends FleetReal {
  /** Runs one schedule after the ones before it, as the term's runner does. */
  schedule(kind: Generated): void;
  /** The leader dies; a new one takes over after the running schedule (which its death fails). */
  failover(): void;
  leader(): Leader;
  violations: string[];
  silent: Set<string>;
}

function taskOf(key: string): { worker: string; taskId: string } | undefined {
  return keys.parseTask(key);
}

/** Checks every commit: no two statuses of one task; nothing but completions while paused. */
function watchInvariants(etcd: ModelEtcd, violations: string[]): void {
  let paused = false;
  const placedBefore = new Set<string>();
  const keysOf = (taskId: string) =>
    etcd.keysUnder(keys.tasksPrefix).filter((key) => taskOf(key)?.taskId === taskId);
  etcd.onCommit((commit: Commit) => {
    for (const event of commit.events) {
      const status = keys.parseStatus(event.key);
      if (status && event.type === "put") {
        const owners = etcd
          .keysUnder(keys.statusPrefix)
          .filter((key) => keys.parseStatus(key)?.taskId === status.taskId);
        if (owners.length > 1)
          violations.push(`@${commit.revision} ${status.taskId} has statuses ${owners.join(" ")}`);
      }
      if (paused) {
        const task = taskOf(event.key);
        if (event.key === keys.plan || event.key.startsWith(keys.historyPrefix))
          violations.push(`@${commit.revision} ${event.type} ${event.key} while paused`);
        if (task && event.type === "delete")
          violations.push(`@${commit.revision} removed ${event.key} while paused`);
        if (
          task &&
          event.type === "put" &&
          (!placedBefore.has(task.taskId) || keysOf(task.taskId).length > 1)
        )
          violations.push(`@${commit.revision} put ${event.key} while paused (not a completion)`);
      }
      const task = taskOf(event.key);
      if (task && event.type === "put") placedBefore.add(task.taskId);
      if (event.key === keys.paused) paused = event.type === "put";
    }
  });
}

async function setup(s: fc.Scheduler, options: { silentW1: boolean; maxMoving: MaxMoving }) {
  const etcd = new ModelEtcd(s);
  const violations: string[] = [];
  const silent = new Set(options.silentW1 ? ["w1"] : []);
  const client = etcd.client();
  let leader = await lead(etcd, keys, "m1", violations);
  let terms = 1;
  reactingWorkers(s, etcd, keys, silent);
  watchInvariants(etcd, violations);
  const context = (kind: Generated, term: Leader): ScheduleContext => ({
    client,
    keys,
    leader: "m",
    epoch: terms,
    writer: term.writer,
    generator: (): Task[] => generated[kind].map((id) => ({ id })),
    timeoutMs: 60_000,
    handoffs: term.gate,
    pacer: term.pacer,
    maxMoving: options.maxMoving,
    maxRemovalPercent: 50,
    liveWorkers: () => [],
    logger: silentLogger,
    signal: term.stop.signal,
  });
  let chain = Promise.resolve();
  const schedule = (kind: Generated) => {
    chain = chain.then(() => {
      const term = leader;
      return runSchedule(context(kind, term), [kind]).then(
        () => undefined,
        (error: { code?: string }) => {
          const expected = ["ERR_PAUSED", "ERR_REMOVAL_GUARD"];
          if (!expected.includes(error.code ?? "") && !term.stop.signal.aborted)
            violations.push(`schedule failed: ${String(error)}`);
        },
      );
    });
  };
  // SIGKILL: the lease (and the election key) goes; nothing of the old leader finishes its work.
  const kill = (dead: Leader) => {
    etcd.write([{ type: "delete", key: dead.election }]);
    dead.stop.abort();
    void dead.pacer.cancelPending();
    void dead.gate.close();
  };
  const failover = () => {
    kill(leader);
    chain = chain.then(async () => {
      // A leader an earlier failover made after this one was asked for dies too: one leader at a time.
      kill(leader);
      terms++;
      leader = await lead(etcd, keys, `m${terms}`, violations);
      // The model keeps every revision: no record's history is compacted, so the generator is not called.
      const resume = {
        client,
        keys,
        logger: silentLogger,
        generator: () => [],
        settings: { timeoutMs: 5_000 },
      };
      await resumeBegunMoves(resume, leader.gate, undefined, () => [], leader.stop.signal);
    });
  };
  // The base tasks run on w1 before the commands start.
  etcd.write([{ type: "put", key: keys.worker("w1"), value: "{}", lease: leaseOf("w1") }]);
  schedule("base");
  await settle(s);
  const real: Real = {
    etcd,
    keys,
    reschedule: () => schedule("base"),
    // The leader drops the queued moves.
    onPaused: () => void leader.pacer.cancelPending(),
    schedule,
    failover,
    leader: () => leader,
    violations,
    silent,
  };
  return real;
}

/** The registration goes while the tasks run (their statuses stay): a schedule moving them must wait for their stop. */
class Deregister implements fc.AsyncCommand<Model, Real> {
  constructor(readonly worker: string) {}
  check = (model: Readonly<Model>) => model.workers.has(this.worker) && model.workers.size > 1;
  async run(model: Model, real: Real): Promise<void> {
    model.workers.delete(this.worker);
    real.etcd.write([{ type: "delete", key: keys.worker(this.worker) }]);
    if (!model.paused) real.schedule("base");
  }
  toString = () => `deregister(${this.worker})`;
}

class Schedule implements fc.AsyncCommand<Model, Real> {
  constructor(readonly kind: Generated) {}
  check = (model: Readonly<Model>) => !model.paused;
  async run(_model: Model, real: Real): Promise<void> {
    real.schedule(this.kind);
  }
  toString = () => `schedule(${this.kind})`;
}

/** The leader dies (SIGKILL) and another takes over; its first schedule follows unless paused. */
class LeaderDies implements fc.AsyncCommand<Model, Real> {
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    real.failover();
    if (!model.paused) real.schedule("empty");
  }
  toString = () => "leaderDies";
}

const commands = fc.commands(
  [
    fc.constantFrom("w2", "w3").map((worker) => new Join<Real>(worker)),
    fc.constantFrom("w1", "w2", "w3").map((worker) => new LeaseGone<Real>(worker)),
    fc.constantFrom("w1", "w2", "w3").map((worker) => new Deregister(worker)),
    fc.constantFrom<Generated>("base", "more", "empty").map((kind) => new Schedule(kind)),
    fc.constant(new Pause<Real>()),
    fc.constant(new Resume<Real>()),
    fc.constant(new LeaderDies()),
  ],
  { maxCommands: 7 },
);

describe("schedules, hand-offs and the operator's controls, any interleaving (property)", () => {
  it("no task on two workers; nothing but completions while paused; every begun move finishes", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        commands,
        fc.boolean(),
        fc.constantFrom<MaxMoving>(1, 2, "100%"),
        async (s, cmds, silentW1, maxMoving) => {
          const real = await setup(s, { silentW1, maxMoving });
          await fc.scheduledModelRun(
            s,
            () => ({ model: { paused: false, workers: new Set(["w1"]) }, real }),
            cmds,
          );
          await settle(s);
          const placed = real.etcd.keysUnder(keys.tasksPrefix).map((key) => taskOf(key)?.taskId);
          expect(real.violations).toEqual([]);
          expect(BASE.map((id) => [id, placed.filter((taskId) => taskId === id).length])).toEqual(
            BASE.map((id) => [id, 1]),
          );
          expect(EXTRA.filter((id) => placed.filter((taskId) => taskId === id).length > 1)).toEqual([]);
          expect(real.leader().gate.unsettled).toBe(0);
          expect(real.etcd.keysUnder(keys.movesPrefix)).toEqual([]);
        },
      ),
      { numRuns: 200 },
    );
  });
});
