import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { keyLayout, type LeaseSession, silentLogger, type TaskStatus } from "../../../src/node/index.js";
import { type ClaimResult, StatusPublisher } from "../../../src/worker/status-publisher.js";
import { StatusWriter } from "../../../src/worker/status-writer.js";
import { MemoryEtcd } from "./memory-etcd.js";

/**
 * One worker's status keys written through a `StatusWriter` (group commit: a write goes at once when
 * none is in flight, claims only behind claims, several transactions in flight) by one
 * `StatusPublisher` per task, as the task runners do; the order in which etcd commits the concurrent
 * transactions is the scheduler's, and the master moves task keys and the lease ends at any moment
 * (fc.commands). Invariants, once everything has settled:
 * - every write and claim has resolved (nothing waits forever, even after the lease ended);
 * - each task's writes committed in the order the task made them (a claim, then the deletion of the
 *   stop that follows it, never the other way round), whatever the batching;
 * - while the lease lives, each task's status key in etcd is what its publisher believes is stored
 *   (readiness is judged on that belief), and a run lock of ours exists only with its status key;
 * - a claim reported as stored was made on the task key's revision at the time it committed, so a
 *   task the master moved before the claim landed is never reported claimed;
 * - once the lease has ended, nothing is left under it;
 * - no two transactions in flight at once write one key (so no commit order can reorder a task's
 *   writes, whichever transactions the writer sends without waiting: claims, deletions, full batches).
 * A publisher that hands the writer a task's next write before the previous one is answered (the
 * controls below) breaks the order invariant and sends one key in two transactions: the checks find both.
 */

const keys = keyLayout("prop");
const TASKS = ["a", "b", "c"] as const;
const LEASE = "7";

interface Model {
  ended: boolean;
}

/** What the test needs of a task's publisher. */
interface Publisher {
  publish(status: TaskStatus | undefined): void;
  claim(status: TaskStatus, taskRevision: number): Promise<ClaimResult>;
  flushed(): Promise<void>;
  readonly storedStatus: TaskStatus | undefined;
}

interface Real {
  scheduler: fc.Scheduler;
  etcd: MemoryEtcd;
  lease: AbortController;
  publishers: Map<string, Publisher>;
  /** Every claim's outcome, with the task key's mod revision when the claim was made. */
  claims: Array<{ id: string; revision: number; outcome?: ClaimResult; settled: Promise<unknown> }>;
  /** Task id → the values it wrote, in the order it made the writes (undefined: a deletion). */
  issued: Map<string, Array<string | undefined>>;
}

let written = 0;
/** Each write's value is unique (its `since`), so the history shows which write committed. */
const status = (state: TaskStatus["state"]): TaskStatus => ({ state, attempt: 1, since: `w${++written}` });
const tick = () => new Promise((resolve) => setTimeout(resolve, 1));
const taskRevision = (real: Real, id: string) => real.etcd.kv.get(keys.task("w1", id))?.mod_revision ?? 0;

/** The control: every write goes to the writer at once, without waiting for the task's previous one. */
class HastyPublisher implements Publisher {
  storedStatus: TaskStatus | undefined;
  private last: Promise<unknown> = Promise.resolve();
  constructor(
    private readonly id: string,
    private readonly writer: StatusWriter,
  ) {}
  publish(next: TaskStatus | undefined): void {
    const done = next ? this.writer.put(this.id, next) : this.writer.remove(this.id);
    this.last = done.then(() => (this.storedStatus = next));
  }
  claim(next: TaskStatus, taskRevision: number): Promise<ClaimResult> {
    const done = this.writer.claim(this.id, next, taskRevision);
    this.last = done.then((result) => result.claimed && (this.storedStatus = next));
    return done;
  }
  async flushed(): Promise<void> {
    await this.last;
  }
}

function setup(s: fc.Scheduler, hasty: boolean): () => { model: Model; real: Real } {
  return () => {
    const etcd = new MemoryEtcd((label) => s.schedule(Promise.resolve(), label));
    for (const id of TASKS) etcd.write(keys.task("w1", id), JSON.stringify({ id }));
    // A claim requires the worker's registration under its lease.
    etcd.write(keys.worker("w1"), JSON.stringify({ name: "w1" }), LEASE);
    const lease = new AbortController();
    const session = { id: LEASE, signal: lease.signal } as unknown as LeaseSession;
    const writer = new StatusWriter(etcd.client, keys, "w1", session, silentLogger);
    const publisherOf = (id: string): Publisher =>
      hasty ? new HastyPublisher(id, writer) : new StatusPublisher(id, writer);
    const publishers = new Map(TASKS.map((id) => [id as string, publisherOf(id)]));
    const issued = new Map(TASKS.map((id) => [id as string, [] as Array<string | undefined>]));
    const real = { scheduler: s, etcd, lease, publishers, claims: [], issued };
    return { model: { ended: false }, real };
  };
}

type Command = fc.AsyncCommand<Model, Real>;
const command = (name: string, run: (model: Model, real: Real) => unknown | Promise<unknown>): Command => ({
  check: () => true,
  run: async (model, real) => {
    await run(model, real);
    await tick();
  },
  toString: () => name,
});

const claim = (id: string) =>
  command(`claim(${id})`, (_model, real) => {
    const revision = taskRevision(real, id);
    const starting = status("starting");
    real.issued.get(id)?.push(JSON.stringify(starting));
    const entry: Real["claims"][number] = { id, revision, settled: Promise.resolve() };
    entry.settled = (real.publishers.get(id) as Publisher)
      .claim(starting, revision)
      .then((outcome) => (entry.outcome = outcome));
    real.claims.push(entry);
  });
const put = (id: string) =>
  command(`put(${id})`, (_m, real) => {
    const running = status("running");
    real.issued.get(id)?.push(JSON.stringify(running));
    real.publishers.get(id)?.publish(running);
  });
/** The stop of a task: its status (and run lock) deleted. */
const remove = (id: string) =>
  command(`remove(${id})`, (_m, real) => {
    real.issued.get(id)?.push(undefined);
    real.publishers.get(id)?.publish(undefined);
  });
/** The master rewrites a task key (a move, a change): claims on the old revision must fail. */
const move = (id: string) =>
  command(`move(${id})`, (_m, real) =>
    real.etcd.write(keys.task("w1", id), JSON.stringify({ id, at: Math.random() })),
  );
/** etcd commits one of the transactions in flight (which one: the scheduler's choice). */
const commit = command("commit", async (_m, real) => {
  if (real.scheduler.count() > 0) await real.scheduler.waitOne();
});
const endLease = command("lease ends", (model, real) => {
  model.ended = true;
  real.lease.abort();
  real.etcd.endLease(LEASE);
});

const commands = fc.commands(
  [
    fc.constantFrom(...TASKS).chain((id) => fc.constantFrom(claim(id), put(id), remove(id), move(id))),
    fc.constant(commit),
    fc.constant(endLease),
  ],
  { maxCommands: 25 },
);

async function settle(s: fc.Scheduler, real: Real): Promise<boolean> {
  let settled = false;
  const pending = [
    ...real.claims.map((entry) => entry.settled),
    ...[...real.publishers.values()].map((p) => p.flushed()),
  ];
  void Promise.all(pending).then(() => (settled = true));
  for (let round = 0; round < 500 && !settled; round++) {
    await tick();
    while (s.count() > 0) await s.waitOne();
  }
  return settled;
}

/** A task whose committed writes are not in the order it made them (each write commits at most once). */
function outOfOrder(real: Real): string | undefined {
  for (const id of TASKS) {
    const key = keys.status("w1", id);
    const committed = real.etcd.history.filter((entry) => entry.key === key).map((entry) => entry.value);
    const issued = real.issued.get(id) ?? [];
    let next = 0;
    for (const value of committed) {
      while (next < issued.length && issued[next] !== value) next++;
      if (next === issued.length)
        return `${id}'s writes committed out of order: ${JSON.stringify(committed)} for ${JSON.stringify(issued)}`;
      next++;
    }
  }
  return undefined;
}

/** `only`: the controls check one invariant each, to show each check can fail. */
function property(hasty: boolean, only?: "order" | "overlaps") {
  return fc.asyncProperty(fc.scheduler(), commands, async (s, cmds) => {
    const init = setup(s, hasty);
    let state: { model: Model; real: Real } | undefined;
    await fc.asyncModelRun(() => (state = init()), cmds);
    const { model, real } = state as { model: Model; real: Real };
    expect(await settle(s, real)).toBe(true);
    const disorder = outOfOrder(real);
    if (disorder && only !== "overlaps") throw new Error(disorder);
    if (real.etcd.overlaps.length > 0 && only !== "order")
      throw new Error(`keys written by two transactions in flight: ${real.etcd.overlaps.join(", ")}`);
    // A claim reported stored committed in a transaction whose compare on its task key held.
    for (const entry of real.claims)
      if (entry.outcome?.claimed)
        expect(real.etcd.heldCompares.has(`${keys.task("w1", entry.id)}@${entry.revision}`)).toBe(true);
    const underLease = [...real.etcd.kv].filter(([, stored]) => stored.lease === LEASE);
    if (model.ended) {
      expect(underLease).toEqual([]);
      return;
    }
    for (const id of TASKS) {
      const stored = real.etcd.kv.get(keys.status("w1", id))?.value;
      const believed = real.publishers.get(id)?.storedStatus;
      expect(stored === undefined ? undefined : JSON.parse(stored)).toEqual(believed);
      if (real.etcd.kv.get(keys.runLock(id))?.lease === LEASE) expect(stored).toBeDefined();
    }
  });
}

describe("StatusWriter under StatusPublishers, any commit order (property)", () => {
  it("settles every write, commits each task's writes in order, keeps etcd equal to what each task believes is stored, and never reports a stale claim", async () => {
    await fc.assert(property(false), { numRuns: 200 });
  });

  it("with a publisher that does not wait for each answer, the check finds a task's writes out of order (so the property above can fail)", async () => {
    const outcome = await fc.check(property(true, "order"), { numRuns: 200, seed: 23 });
    expect(outcome.failed).toBe(true);
    expect(String(outcome.errorInstance)).toContain("committed out of order");
  });

  it("with that publisher, the check finds one key written by two transactions in flight (the writes that could commit out of order)", async () => {
    const outcome = await fc.check(property(true, "overlaps"), { numRuns: 200, seed: 23 });
    expect(outcome.failed).toBe(true);
    expect(String(outcome.errorInstance)).toContain("written by two transactions in flight");
  });
});
