import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { keyLayout, type LeaseSession, silentLogger, type TaskStatus } from "../../../src/node/index.js";
import { LockAudit } from "../../../src/worker/lock-audit.js";
import { StatusPublisher } from "../../../src/worker/status-publisher.js";
import { StatusWriter } from "../../../src/worker/status-writer.js";
import { MemoryEtcd } from "./memory-etcd.js";

/**
 * Two processes A and B of one worker name w1, and one task t assigned to w1, while a script deletes
 * the registration `/R/worker/w1` by hand at any moment (fc.commands); etcd commits the concurrent
 * transactions in the scheduler's order. Each process claims t through its real `StatusWriter` (run
 * lock, registration compare, verification of another lease's lock) and audits its lease through its
 * real `LockAudit`. A process registers only while the name is free, each time under a fresh lease
 * (as `Worker` does); `notice` is its registration watch: once the registration is gone or another's,
 * it stops t, waits for its status writes, and revokes its lease. A refusal naming a process of its
 * own name is not written to the shared status key (as `TaskRunner` does).
 * Invariants:
 * - t never starts in one process while it runs in the other, whatever is deleted or registered;
 * - once each process has noticed and each registered one has audited and claimed, twice: t runs in
 *   the process holding the registration, and only there (nothing runs when nobody holds it).
 * The controls: a process that does not watch its registration keeps t after losing the name; writing
 * a refusal over the holder's status leaves t running nowhere while a process holds the name. The
 * check finds both. With the old rule (a lock whose lease is not its worker's registration is forged),
 * the first invariant fails: B starts t while A runs it (seed 19, after 37 runs).
 */

const keys = keyLayout("prop");
const NAME = "w1";
const PROCESSES = ["A", "B"] as const;
type Name = (typeof PROCESSES)[number];
const REGISTRATION = keys.worker(NAME);

/** One registration of a process: its lease, writer, audit, and what it does with t. */
interface Incarnation {
  lease: string;
  ended: AbortController;
  publisher: StatusPublisher;
  audit: LockAudit;
  running: boolean;
  claiming: boolean;
}

interface Real {
  scheduler: fc.Scheduler;
  etcd: MemoryEtcd;
  processes: Map<Name, Incarnation | undefined>;
  violations: string[];
  pending: Array<Promise<unknown>>;
  /** The controls: a refusal naming this worker's own name is written to the status key; no process notices. */
  control?: "clobber" | "deaf";
  nextLease: number;
}

const failed: TaskStatus = { state: "failed", attempt: 1, since: "t", error: "run lock held" };
const starting: TaskStatus = { state: "starting", attempt: 1, since: "t" };
const other = (name: Name): Name => (name === "A" ? "B" : "A");

function setup(s: fc.Scheduler, control: Real["control"]): () => { model: object; real: Real } {
  return () => {
    const etcd = new MemoryEtcd((label) => s.schedule(Promise.resolve(), label));
    etcd.write(keys.task(NAME, "t"), JSON.stringify({ id: "t" }));
    const real: Real = {
      scheduler: s,
      etcd,
      processes: new Map(),
      violations: [],
      pending: [],
      control,
      nextLease: 11,
    };
    register(real, "A");
    return { model: {}, real };
  };
}

/** The name is free: the process registers under a fresh lease (a new session). */
function register(real: Real, name: Name): void {
  const lease = String(real.nextLease++);
  real.etcd.write(REGISTRATION, JSON.stringify({ name: NAME }), lease);
  const ended = new AbortController();
  const session = {
    id: lease,
    signal: ended.signal,
    get active() {
      return !ended.signal.aborted;
    },
  } as unknown as LeaseSession;
  const writer = new StatusWriter(real.etcd.client, keys, NAME, session, silentLogger);
  const publisher = new StatusPublisher("t", writer);
  const incarnation: Incarnation = {
    lease,
    ended,
    publisher,
    running: false,
    claiming: false,
    audit: new LockAudit({
      client: real.etcd.client,
      keys,
      lease: session,
      logger: silentLogger,
      intervalMs: 0,
      locks: () => writer.runLocks,
      reports: (key) => writer.reports(key),
      lost: (_id, holder) => {
        incarnation.running = false;
        if (real.control === "clobber" || holder.heldBy !== NAME) publisher.publish(failed);
      },
    }),
  };
  real.processes.set(name, incarnation);
}

/** A claim; refused by a lock, it is made once more (a task runner's retry after its backoff). */
function claim(real: Real, name: Name, retries = 1): Promise<unknown> {
  const me = real.processes.get(name) as Incarnation;
  me.claiming = true;
  const revision = real.etcd.kv.get(keys.task(NAME, "t"))?.mod_revision ?? 0;
  return me.publisher.claim(starting, revision).then(async (result) => {
    me.claiming = false;
    if (!result.claimed) {
      const theirs = result.heldBy === NAME && real.control !== "clobber";
      if (result.heldBy !== undefined && !theirs) me.publisher.publish(failed);
      const again = result.heldBy !== undefined && retries > 0 && real.processes.get(name) === me;
      return again ? claim(real, name, retries - 1) : undefined;
    }
    if (real.processes.get(other(name))?.running)
      real.violations.push(`${name} started t while it ran in ${other(name)}`);
    me.running = true;
    return undefined;
  });
}

/** The registration watch: gone or another's, the process stops t, then its lease is revoked. */
async function notice(real: Real, name: Name): Promise<void> {
  const me = real.processes.get(name);
  if (!me || real.etcd.kv.get(REGISTRATION)?.lease === me.lease || real.control === "deaf") return;
  real.processes.set(name, undefined);
  if (me.running) {
    me.running = false;
    me.publisher.publish(undefined);
  }
  await me.publisher.flushed();
  me.ended.abort();
  real.etcd.endLease(me.lease);
}

type Command = fc.AsyncCommand<object, Real>;
const command = (
  name: string,
  check: (real: Real) => boolean,
  run: (real: Real) => Promise<unknown> | void,
  awaited = false,
): Command => ({
  check: () => true,
  run: async (_model, real) => {
    if (!check(real)) return;
    const done = run(real);
    if (done) real.pending.push(done);
    if (awaited && done) await real.scheduler.waitFor(done);
  },
  toString: () => `${name}${awaited ? "" : "&"}`,
});

const live = (real: Real, name: Name) => real.processes.get(name);
/** One audit; one under a lease revoked meanwhile fails (the real one logs it and goes on). */
const auditOf = async (real: Real, name: Name): Promise<void> => {
  await live(real, name)
    ?.audit.once()
    .catch(() => undefined);
};
const process_ = fc.constantFrom(...PROCESSES);
const commands = fc.commands(
  [
    fc.tuple(process_, fc.boolean()).map(([p, awaited]) =>
      command(
        `claim(${p})`,
        (real) => !!live(real, p) && !live(real, p)?.running && !live(real, p)?.claiming,
        (real) => claim(real, p),
        awaited,
      ),
    ),
    fc.tuple(process_, fc.boolean()).map(([p, awaited]) =>
      command(
        `audit(${p})`,
        (real) => !!live(real, p),
        (real) => auditOf(real, p),
        awaited,
      ),
    ),
    fc.tuple(process_, fc.boolean()).map(([p, awaited]) =>
      command(
        `notice(${p})`,
        () => true,
        (real) => notice(real, p),
        awaited,
      ),
    ),
    process_.map((p) =>
      command(
        `register(${p})`,
        (real) => !live(real, p) && !real.etcd.kv.has(REGISTRATION),
        (real) => register(real, p),
      ),
    ),
    // The adversary's move: the registration deleted by hand and a second process of the name started.
    process_.map((p) =>
      command(
        `takeover(${p})`,
        (real) => !live(real, p),
        (real) => {
          real.etcd.write(REGISTRATION, undefined);
          register(real, p);
        },
      ),
    ),
    fc.constant(
      command(
        "deleteRegistration",
        () => true,
        (real) => real.etcd.write(REGISTRATION, undefined),
      ),
    ),
  ],
  { maxCommands: 14, size: "+1" },
);

async function settle(s: fc.Scheduler, real: Real): Promise<void> {
  for (let quiet = 0; quiet < 3;) {
    await s.waitIdle();
    await new Promise((resolve) => setTimeout(resolve, 1));
    quiet = s.count() === 0 ? quiet + 1 : 0;
  }
  await Promise.all(real.pending.splice(0));
}

function property(control?: Real["control"]) {
  return fc.asyncProperty(fc.scheduler(), commands, async (s, cmds) => {
    const init = setup(s, control);
    let state: { model: object; real: Real } | undefined;
    await fc.asyncModelRun(() => (state = init()), cmds);
    const { real } = state as { model: object; real: Real };
    await settle(s, real);
    for (const name of PROCESSES) {
      real.pending.push(notice(real, name));
      await settle(s, real);
    }
    for (let round = 0; round < 2; round++)
      for (const name of PROCESSES) {
        const me = live(real, name);
        if (!me) continue;
        real.pending.push(auditOf(real, name));
        await settle(s, real);
        if (!me.running && live(real, name) === me) real.pending.push(claim(real, name));
        await settle(s, real);
      }
    expect(real.violations).toEqual([]);
    const registered = real.etcd.kv.get(REGISTRATION)?.lease;
    const holder = PROCESSES.find((name) => registered && live(real, name)?.lease === registered);
    const runs = PROCESSES.filter((name) => live(real, name)?.running);
    if (runs.join() !== (holder ?? ""))
      throw new Error(
        `t runs in [${runs.join()}] once settled, the registration's holder is ${holder ?? "none"}`,
      );
  });
}

describe("two processes of one worker name, the registration deleted by hand, any interleaving (property)", () => {
  it("never run the task at once; once settled it runs in the registration's holder alone", async () => {
    await fc.assert(property(), { numRuns: 300 });
  });

  it("when a process does not watch its registration, the check finds the task left in a process that lost it (so the property above can fail)", async () => {
    const outcome = await fc.check(property("deaf"), { numRuns: 200, seed: 19 });
    expect(outcome.failed).toBe(true);
    expect(String(outcome.errorInstance)).toContain("once settled");
  });

  it("when a refusal is written over the holder's status, the check finds the task left running nowhere (so the property above can fail)", async () => {
    const outcome = await fc.check(property("clobber"), { numRuns: 200, seed: 19 });
    expect(outcome.failed).toBe(true);
    expect(String(outcome.errorInstance)).toContain("once settled");
  });
});
