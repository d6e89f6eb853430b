import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { keyLayout, type LeaseSession, type Logger, type TaskStatus } from "../../../src/node/index.js";
import { FORGED_STATUS, LockAudit } from "../../../src/worker/lock-audit.js";
import { FORGED_LOCK } from "../../../src/worker/run-lock.js";
import { StatusPublisher } from "../../../src/worker/status-publisher.js";
import { StatusWriter } from "../../../src/worker/status-writer.js";
import { MemoryEtcd } from "./memory-etcd.js";

/**
 * One task assigned to two workers at once, each claiming it through its real `StatusWriter` (run
 * locks, verification of another lease's lock, the holder's second witness) and auditing its lease
 * through its real `LockAudit`, while a script deletes the run lock or forges one under either
 * worker's lease, or forges a status of it or of a task nobody has under a worker's lease (fc.commands); etcd commits
 * the concurrent transactions in the scheduler's order.
 * A worker runs the task from a stored claim until it releases it or its audit says another worker
 * took the lock; a refused or stopped worker keeps a `failed` status, as a task runner does.
 * Invariants:
 * - the task starts on a worker while it runs on the other only if the lock was deleted by hand
 *   during that other run (forging and auditing never cause a double run);
 * - after one audit and one claim by each worker, twice, and one more audit each: it runs on exactly
 *   one worker, which holds the only run lock under its own lease; every forged lock deleted was reported, naming its key;
 * - a status a worker stored is never deleted by an audit (each worker's last stored status is in
 *   etcd under its lease), and once settled no other status is left (the forged ones were deleted and
 *   reported, naming their keys).
 * Without the audit (old code), the second invariant fails: the check below finds it.
 */

const keys = keyLayout("prop");
const WORKERS = ["w1", "w2"] as const;
type Name = (typeof WORKERS)[number];
const LEASES: Record<Name, string> = { w1: "11", w2: "12" };
const LOCK = keys.runLock("t");

interface Model {
  lockPresent: boolean;
}

interface Real {
  scheduler: fc.Scheduler;
  etcd: MemoryEtcd;
  /** Each worker's writes of the task, one at a time and in order, as its task runner makes them. */
  publishers: Map<Name, StatusPublisher>;
  audits: Map<Name, LockAudit>;
  /** Current runs: whether the lock was deleted by hand during each. */
  running: Map<Name, { lockDeletedByHand: boolean }>;
  claiming: Set<Name>;
  violations: string[];
  warnings: Array<{ msg: string; key?: unknown }>;
  pending: Array<Promise<unknown>>;
  audit: boolean;
}

const failed: TaskStatus = { state: "failed", attempt: 1, since: "t", error: "run lock held" };
const starting: TaskStatus = { state: "starting", attempt: 1, since: "t" };
const other = (worker: Name): Name => (worker === "w1" ? "w2" : "w1");

function recordingLogger(warnings: Real["warnings"]): Logger {
  const logger = {
    warn: (fields: Record<string, unknown>, msg: string) => warnings.push({ msg, key: fields.key }),
    info: () => {},
    debug: () => {},
    error: () => {},
    child: () => logger,
  };
  return logger as unknown as Logger;
}

function setup(s: fc.Scheduler, audit: boolean, statuses: boolean): () => { model: Model; real: Real } {
  return () => {
    const etcd = new MemoryEtcd((label) => s.schedule(Promise.resolve(), label));
    const real: Real = {
      scheduler: s,
      etcd,
      publishers: new Map(),
      audits: new Map(),
      running: new Map(),
      claiming: new Set(),
      violations: [],
      warnings: [],
      pending: [],
      audit,
    };
    const logger = recordingLogger(real.warnings);
    for (const worker of WORKERS) {
      const lease = LEASES[worker];
      etcd.write(keys.worker(worker), JSON.stringify({ name: worker }), lease);
      etcd.write(keys.task(worker, "t"), JSON.stringify({ id: "t" }));
      const session = { id: lease, signal: new AbortController().signal, active: true };
      const writer = new StatusWriter(etcd.client, keys, worker, session as unknown as LeaseSession, logger);
      const publisher = new StatusPublisher("t", writer);
      real.publishers.set(worker, publisher);
      const lost = () => {
        real.running.delete(worker);
        publisher.publish(failed);
      };
      const options = { client: etcd.client, keys, lease: session as unknown as LeaseSession, logger };
      real.audits.set(
        worker,
        new LockAudit({
          ...options,
          intervalMs: 0,
          locks: () => writer.runLocks,
          // Without the status audit (old code), every status counts as the worker's own.
          reports: (key) => !statuses || writer.reports(key),
          lost,
        }),
      );
    }
    return { model: { lockPresent: false }, real };
  };
}

function claim(real: Real, worker: Name): Promise<unknown> {
  real.claiming.add(worker);
  const revision = real.etcd.kv.get(keys.task(worker, "t"))?.mod_revision ?? 0;
  const publisher = real.publishers.get(worker) as StatusPublisher;
  return publisher.claim(starting, revision).then((result) => {
    real.claiming.delete(worker);
    if (!result.claimed) return result.heldBy === undefined ? undefined : publisher.publish(failed);
    const run = real.running.get(other(worker));
    if (run && !run.lockDeletedByHand)
      real.violations.push(`${worker} started t while ${other(worker)} ran it`);
    real.running.set(worker, { lockDeletedByHand: false });
    return undefined;
  });
}

const auditOf = (real: Real, worker: Name) =>
  real.audit ? (real.audits.get(worker) as LockAudit).once() : Promise.resolve();

type Command = fc.AsyncCommand<Model, Real>;
/** A command whose operation the next command waits for (`awaited`), or runs alongside it. */
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
    // The scheduler releases the other pending steps too, in its order, until this one is done.
    if (awaited && done) await real.scheduler.waitFor(done);
  },
  toString: () => `${name}${awaited ? "" : "&"}`,
});

const worker = fc.constantFrom(...WORKERS);
const commands = (forgeStatuses: boolean) =>
  fc.commands(
    [
      fc.tuple(worker, fc.boolean()).map(([w, awaited]) =>
        command(
          `claim(${w})`,
          (real) => !real.running.has(w) && !real.claiming.has(w),
          (real) => claim(real, w),
          awaited,
        ),
      ),
      fc.tuple(worker, fc.boolean()).map(([w, awaited]) =>
        command(
          `release(${w})`,
          (real) => real.running.has(w),
          (real) => {
            real.running.delete(w);
            const publisher = real.publishers.get(w) as StatusPublisher;
            publisher.publish(undefined);
            return publisher.flushed();
          },
          awaited,
        ),
      ),
      fc.tuple(worker, fc.boolean()).map(([w, awaited]) =>
        command(
          `audit(${w})`,
          () => true,
          (real) => auditOf(real, w),
          awaited,
        ),
      ),
      fc.constant(
        command(
          "deleteLock",
          () => true,
          (real) => {
            real.etcd.write(LOCK, undefined);
            for (const run of real.running.values()) run.lockDeletedByHand = true;
          },
        ),
      ),
      fc.tuple(worker, fc.constantFrom("w1", "w2", "ghost")).map(([owner, value]) =>
        command(
          `forge(${value} under ${owner}'s lease)`,
          (real) => !real.etcd.kv.has(LOCK),
          (real) => real.etcd.write(LOCK, value, LEASES[owner]),
        ),
      ),
      // Of the task itself (the worker's own writes replace it), or of a task nobody was given.
      ...(!forgeStatuses
        ? []
        : [
            fc.tuple(worker, fc.boolean(), fc.constantFrom("t", "x")).map(([owner, asOwner, task]) => {
              const key = keys.status(asOwner ? owner : other(owner), task);
              return command(
                `forgeStatus(${key.slice(keys.statusPrefix.length)} under ${owner}'s lease)`,
                (real) => !real.etcd.kv.has(key),
                (real) =>
                  real.etcd.write(key, JSON.stringify({ ...starting, state: "running" }), LEASES[owner]),
              );
            }),
          ]),
    ],
    { maxCommands: 12 },
  );

async function settle(s: fc.Scheduler, real: Real): Promise<void> {
  for (let quiet = 0; quiet < 3;) {
    await s.waitIdle();
    await new Promise((resolve) => setTimeout(resolve, 1));
    quiet = s.count() === 0 ? quiet + 1 : 0;
  }
  await Promise.all(real.pending.splice(0));
  await Promise.all([...real.publishers.values()].map((publisher) => publisher.flushed()));
}

/** `audit`: the lease audit runs (else no status is forged either); `statusAudit`: it deletes statuses too. */
function property(audit: boolean, statusAudit = true) {
  return fc.asyncProperty(fc.scheduler(), commands(audit), async (s, cmds) => {
    const init = setup(s, audit, statusAudit);
    let state: { model: Model; real: Real } | undefined;
    await fc.asyncModelRun(() => {
      state = init();
      return state;
    }, cmds);
    const { real } = state as { model: Model; real: Real };
    await settle(s, real);
    const auditEach = async () => {
      for (const worker of WORKERS) {
        real.pending.push(auditOf(real, worker));
        await settle(s, real);
      }
    };
    for (let round = 0; round < 2; round++) {
      await auditEach();
      for (const worker of WORKERS) {
        if (!real.running.has(worker)) real.pending.push(claim(real, worker));
        await settle(s, real);
      }
    }
    // A claim may delete a lock forged under the holder's own lease (naming another worker): the
    // holder takes it again at its next audit, as it does any lock deleted by hand.
    await auditEach();
    expect(real.violations).toEqual([]);
    const runs = [...real.running.keys()];
    if (runs.length !== 1) throw new Error(`t runs on ${runs.length} workers once settled`);
    const holder = runs[0] as Name;
    const locks = [...real.etcd.kv].filter(([key]) => key.startsWith(keys.runLocksPrefix));
    expect(locks.map(([key, stored]) => [key, stored.value, stored.lease])).toEqual([
      [LOCK, holder, LEASES[holder]],
    ]);
    for (const warning of real.warnings.filter((w) => w.msg === FORGED_LOCK)) expect(warning.key).toBe(LOCK);
    const statuses = [...real.etcd.kv].filter(([key]) => key.startsWith(keys.statusPrefix));
    const stored = WORKERS.flatMap((w) => {
      const status = (real.publishers.get(w) as StatusPublisher).storedStatus;
      return status ? [[keys.status(w, "t"), JSON.stringify(status), LEASES[w]]] : [];
    });
    const left = statuses.map(([key, kept]) => [key, kept.value, kept.lease]);
    expect(left.sort()).toEqual(stored.sort());
    const statusKeys = WORKERS.flatMap((w) => [keys.status(w, "t"), keys.status(w, "x")]);
    for (const warning of real.warnings.filter((w) => w.msg === FORGED_STATUS))
      expect(statusKeys).toContain(warning.key);
  });
}

describe("run locks deleted or forged by hand, any interleaving (property)", () => {
  it("never start a second run unless the lock was deleted during the first; after one audit and claim each, one run holds the only lock", async () => {
    await fc.assert(property(true), { numRuns: 200 });
  });

  it("without the lease audit the check finds a task left on two workers (so the property above can fail)", async () => {
    const outcome = await fc.check(property(false), { numRuns: 200, seed: 19 });
    expect(outcome.failed).toBe(true);
    expect(String(outcome.errorInstance)).toContain("t runs on 2 workers once settled");
  });

  it("without the audit of statuses the check finds a forged status left (so the property above can fail)", async () => {
    const outcome = await fc.check(property(true, false), { numRuns: 200, seed: 19 });
    expect(outcome.failed).toBe(true);
    expect(String(outcome.errorInstance)).toContain("/prop/status/");
  });
});
