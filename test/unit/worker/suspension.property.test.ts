import type { Etcd3 } from "etcd3";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { keyLayout, registerWhenAdmitted, silentLogger } from "../../../src/node/index.js";
import { type StartStopHandler, taskLauncher } from "../../../src/worker/handler.js";
import { CLAIMED, type StatusSink } from "../../../src/worker/status-publisher.js";
import { WorkerSession } from "../../../src/worker/worker-session.js";
import { fakeLease, recordingHost } from "./fake-lease.js";
import { scheduledModelRun } from "../../helpers/model-run.js";

/**
 * A worker's lease against its registration and its session, whatever order the registration's
 * transaction, the status writes and the handler's starts and stops complete in (fc.scheduler), with
 * the lease suspended and resumed and tasks put and deleted at any moment (fc.commands). Invariants:
 * - nothing is registered while the lease is suspended (the registration transaction is not sent);
 * - no task starts while the lease is suspended (from before the session exists, or during it);
 * - settled while suspended: nothing runs and the worker says `lost`; settled after a resumption:
 *   exactly the tasks the keys hold run, and the worker no longer says `lost`.
 * On the old code the first two fail (defect 5): a lease suspended while the worker waited to
 * register was not seen, so it registered and its session started tasks.
 */

const keys = keyLayout("prop");
const TASKS = ["a", "b", "c"] as const;

/** What etcd holds: the task keys under this worker (id → mod revision). */
interface Model {
  tasks: Map<string, number>;
  revision: number;
  suspended: boolean;
}

interface Real {
  lease: ReturnType<typeof fakeLease>;
  host: ReturnType<typeof recordingHost>;
  session?: WorkerSession;
  running: Set<string>;
  violations: string[];
}

function setup(s: fc.Scheduler): () => { model: Model; real: Real } {
  return () => {
    const model: Model = { tasks: new Map(), revision: 0, suspended: false };
    const real: Real = {
      lease: fakeLease(),
      host: recordingHost(),
      running: new Set(),
      violations: [],
    };
    const { lease } = real.lease;
    const client = {
      kv: {
        txn: async () => {
          if (lease.suspended) real.violations.push("registration sent while the lease was suspended");
          await s.schedule(Promise.resolve(), "registration txn");
          return { succeeded: true, responses: [], header: { revision: "1" } };
        },
      },
    } as unknown as Etcd3;
    const handler: StartStopHandler = {
      start: async (task) => {
        if (lease.suspended) real.violations.push(`${task.id} started while the lease was suspended`);
        await s.schedule(Promise.resolve(), `start ${task.id}`);
        real.running.add(task.id);
      },
      stop: async (task) => {
        await s.schedule(Promise.resolve(), `stop ${task.id}`);
        real.running.delete(task.id);
      },
    };
    const written = () => s.schedule(Promise.resolve(), "status write");
    const status: StatusSink = {
      put: async () => void (await written()),
      remove: async () => void (await written()),
      claim: async () => (await written(), CLAIMED),
    };
    const info = { name: "w1", host: "h", pid: 1, version: "0", startedAt: "" };
    // Worker.connect then Worker.live: the lease is granted, a registration slot frees (at a moment
    // the scheduler picks), the worker registers under the lease, then makes a session on it.
    const slotFree = s.schedule(Promise.resolve(), "a registration slot frees");
    const registered = slotFree.then(() =>
      registerWhenAdmitted({ client, keys, session: lease, info, maxWorkers: 0 }),
    );
    void registered.then(() => {
      real.session = new WorkerSession({
        client,
        keys,
        name: "w1",
        lease,
        launcher: taskLauncher(handler),
        logger: silentLogger,
        stopTimeoutMs: 60_000,
        startRetry: { initialMs: 1, maxMs: 1 },
        expectedWorkers: 0,
        host: real.host.host,
        status,
      });
      real.session.applySnapshot(
        new Map([...model.tasks.keys()].map((id) => [keys.task("w1", id), JSON.stringify({ id })])),
        (key) => model.tasks.get(keys.parseTask(key)?.taskId ?? "") ?? 0,
      );
    });
    return { model, real };
  };
}

class Suspend implements fc.AsyncCommand<Model, Real> {
  check = (model: Readonly<Model>) => !model.suspended;
  async run(model: Model, real: Real): Promise<void> {
    model.suspended = true;
    real.lease.suspend(new Error("keep-alive overdue"));
  }
  toString = () => "suspend";
}

class Resume implements fc.AsyncCommand<Model, Real> {
  check = (model: Readonly<Model>) => model.suspended;
  async run(model: Model, real: Real): Promise<void> {
    model.suspended = false;
    real.lease.resume();
  }
  toString = () => "resume";
}

/** The master puts or deletes a task key; the session's watch delivers it (once the session exists). */
class Assign implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly id: string,
    readonly present: boolean,
  ) {}
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    const key = keys.task("w1", this.id);
    if (this.present) {
      model.tasks.set(this.id, ++model.revision);
      real.session?.applyChange(
        {
          type: "put",
          key,
          value: JSON.stringify({ id: this.id }),
          revision: model.revision,
          synthetic: false,
        },
        model.revision,
      );
    } else if (model.tasks.delete(this.id)) {
      real.session?.applyChange(
        { type: "delete", key, revision: ++model.revision, synthetic: false },
        model.revision,
      );
    }
  }
  toString = () => `${this.present ? "put" : "delete"}(${this.id})`;
}

const commands = fc.commands(
  [
    fc.constant(new Suspend()),
    fc.constant(new Resume()),
    fc.tuple(fc.constantFrom(...TASKS), fc.boolean()).map(([id, present]) => new Assign(id, present)),
  ],
  { maxCommands: 10 },
);

function expectSettled(model: Model, real: Real): void {
  expect(real.violations).toEqual([]);
  if (model.suspended) {
    expect([...real.running]).toEqual([]);
    if (real.session) expect(real.host.statuses.at(-1)).toBe("lost");
  } else {
    expect([...real.running].sort()).toEqual([...model.tasks.keys()].sort());
    expect(real.host.statuses.at(-1)).not.toBe("lost");
  }
}

describe("Suspension and LeaseSession against registration, any interleaving (property)", () => {
  it("registers nothing and starts nothing while the lease is suspended, and runs the latest view once resumed", async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), commands, async (s, cmds) => {
        const init = setup(s);
        const { model, real } = await scheduledModelRun(s, init, cmds);
        await s.waitIdle();
        expectSettled(model, real);
        if (model.suspended) {
          await new Resume().run(model, real);
          await s.waitIdle();
          expectSettled(model, real);
        }
      }),
      { numRuns: 300 },
    );
  });
});
