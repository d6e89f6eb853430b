/**
 * The parts the leader's interleaving properties share over the model etcd: a leadership (fenced writer,
 * hand-off gate, move pacer), workers that claim and stop the tasks put under them, and settling.
 */
import type fc from "fast-check";
import { FencedWriter, leaderFence } from "../../../src/master/fencing.js";
import { HandoffGate } from "../../../src/master/handoff.js";
import { MovePacer } from "../../../src/master/pacing.js";
import { type KeyLayout, silentLogger } from "../../../src/node/index.js";
import type { ModelEtcd } from "./model-etcd.js";

/** One leadership: its fenced writer, gate and pacer. */
export interface Leader {
  election: string;
  writer: FencedWriter;
  gate: HandoffGate;
  pacer: MovePacer;
  stop: AbortController;
}

/** The lease a worker's keys are written under (its registration stands for it). */
export const leaseOf = (worker: string) => String(100 + Number(worker.slice(1)));

/** Workers: a put under a registered, reporting worker is claimed; a removal stops the task. */
export function reactingWorkers(
  s: fc.Scheduler,
  etcd: ModelEtcd,
  keys: KeyLayout,
  silent: ReadonlySet<string> = new Set(),
): void {
  etcd.onCommit((commit) => {
    for (const event of commit.events) {
      const task = keys.parseTask(event.key);
      if (!task || silent.has(task.worker)) continue;
      const status = keys.status(task.worker, task.taskId);
      if (event.type === "put") {
        void s.schedule(Promise.resolve(), `${task.worker} claims ${task.taskId}`).then(() => {
          // The claim compares the task key; the worker's registration stands for its lease.
          if (etcd.kvs.has(event.key) && etcd.kvs.has(keys.worker(task.worker)) && !etcd.kvs.has(status))
            etcd.write([{ type: "put", key: status, value: "running", lease: leaseOf(task.worker) }]);
        });
      } else {
        void s.schedule(Promise.resolve(), `${task.worker} stops ${task.taskId}`).then(() => {
          if (etcd.kvs.has(status)) etcd.write([{ type: "delete", key: status }]);
        });
      }
    }
  });
}

/** Waits until nothing is scheduled three turns in a row. */
export async function settle(s: fc.Scheduler): Promise<void> {
  for (let quiet = 0; quiet < 3;) {
    await s.waitIdle();
    await new Promise((resolve) => setImmediate(resolve));
    quiet = s.count() === 0 ? quiet + 1 : 0;
  }
}

/** A leadership named `name`: its election key (under the lease "1"), writer, gate and pacer; the gate started. */
export async function lead(
  etcd: ModelEtcd,
  keys: KeyLayout,
  name: string,
  violations: string[],
): Promise<Leader> {
  const election = `${keys.electionCandidatesPrefix}${name}`;
  const created = etcd.write([{ type: "put", key: election, value: name, lease: "1" }]);
  const writer = new FencedWriter(etcd.client(), leaderFence(election, created), { pausedKey: keys.paused });
  const stop = new AbortController();
  let pacer: MovePacer | undefined;
  const gate = new HandoffGate(etcd.statusSource(keys.statusPrefix), keys, writer, {
    logger: silentLogger,
    onReleased: () => pacer?.refill(stop.signal),
    onWriteFailed: (error) => violations.push(`hand-off write failed: ${String(error)}`),
  });
  pacer = new MovePacer(keys, gate, writer, {
    logger: silentLogger,
    onFailed: (error) => {
      if (!writer.deposed) violations.push(`paced move failed: ${String(error)}`);
    },
  });
  await gate.start(stop.signal);
  return { election, writer, gate, pacer, stop };
}

/** The operator's and the fleet's view in a model run: whether paused, and the registered workers. */
export type FleetModel = { paused: boolean; workers: Set<string> };

/** What the shared commands need of a property's real side. */
export interface FleetReal {
  etcd: ModelEtcd;
  keys: KeyLayout;
  /** A schedule after a change (as the term's runner queues one). */
  reschedule(): void;
  /** Called once the pause is written (the leader drops its queued moves). */
  onPaused?(): void;
}

/** A worker registers under its lease; a schedule follows unless paused. */
export class Join<R extends FleetReal> implements fc.AsyncCommand<FleetModel, R> {
  constructor(readonly worker: string) {}
  check = (model: Readonly<FleetModel>) => !model.workers.has(this.worker);
  async run(model: FleetModel, real: R): Promise<void> {
    model.workers.add(this.worker);
    const { keys } = real;
    real.etcd.write([
      { type: "put", key: keys.worker(this.worker), value: "{}", lease: leaseOf(this.worker) },
    ]);
    if (!model.paused) real.reschedule();
  }
  toString = () => `join(${this.worker})`;
}

/**
 * The worker's lease goes (a crash: no left mark): its registration and every status of it at once;
 * one worker always stays, so a schedule always has somewhere to put the tasks. `scheduled`: a schedule
 * follows unless paused (else the next command's does).
 */
export class LeaseGone<R extends FleetReal> implements fc.AsyncCommand<FleetModel, R> {
  constructor(
    readonly worker: string,
    readonly scheduled = false,
  ) {}
  check = (model: Readonly<FleetModel>) => model.workers.has(this.worker) && model.workers.size > 1;
  async run(model: FleetModel, real: R): Promise<void> {
    model.workers.delete(this.worker);
    const { keys } = real;
    const statuses = real.etcd.keysUnder(keys.workerStatusPrefix(this.worker));
    real.etcd.write([keys.worker(this.worker), ...statuses].map((key) => ({ type: "delete" as const, key })));
    if (this.scheduled && !model.paused) real.reschedule();
  }
  toString = () => `leaseGone(${this.worker})`;
}

/** `escheduler pause` returns once its put is written. */
export class Pause<R extends FleetReal> implements fc.AsyncCommand<FleetModel, R> {
  check = (model: Readonly<FleetModel>) => !model.paused;
  async run(model: FleetModel, real: R): Promise<void> {
    model.paused = true;
    real.etcd.write([{ type: "put", key: real.keys.paused, value: JSON.stringify({ at: "now" }) }]);
    real.onPaused?.();
  }
  toString = () => "pause";
}

/** `escheduler resume`: the pause goes and a schedule follows. */
export class Resume<R extends FleetReal> implements fc.AsyncCommand<FleetModel, R> {
  check = (model: Readonly<FleetModel>) => model.paused;
  async run(model: FleetModel, real: R): Promise<void> {
    model.paused = false;
    real.etcd.write([{ type: "delete", key: real.keys.paused }]);
    real.reschedule();
  }
  toString = () => "resume";
}
