/** Helpers of the master's integration tests: masters on a test root, hand-written workers, whole-root snapshots. */
import { type Etcd3, type ITxnRequest, SortOrder, SortTarget } from "etcd3";
import { afterEach } from "vitest";
import { type Generator, Master, type MasterOptions } from "../../../src/master/index.js";
import { type KeyLayout, LeaseSession, prefixRangeEnd, type Task } from "../../../src/node/index.js";
import { PrefixWatcher } from "../../../src/watcher/index.js";
import { testClient } from "../../helpers/context.js";

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

/** A master on `space`'s root with short timings (ttl 2 s, no gathering, no interval to speak of); stopped after the test. */
export function testMaster(
  space: { root: string; endpoints: string[] },
  generator: Generator,
  overrides: Partial<MasterOptions> = {},
): Master {
  const master = new Master({
    client: overrides.client ?? testClient(space.endpoints),
    root: space.root,
    ttlMs: 2_000,
    expectedWorkers: 0,
    intervalMs: 600_000,
    rebalanceWaitMs: 50,
    timeoutMs: 5_000,
    barrierTimeoutMs: 5_000,
    generator,
    ...overrides,
  });
  master.on("error", () => undefined);
  cleanups.push(() => master.stop());
  return master;
}

/** `count` tasks t0…t(count-1). */
export function tasks(count: number, extra: Partial<Task> = {}): Task[] {
  return Array.from({ length: count }, (_, i) => ({ id: `t${i}`, ...extra }));
}

/** Every key and value under the root except the election's (which masters change by campaigning). */
export async function snapshot(client: Etcd3, keys: KeyLayout): Promise<Record<string, string>> {
  const all = await client.getAll().prefix(keys.prefix).strings();
  for (const key of Object.keys(all)) if (key.startsWith(keys.electionPrefix)) delete all[key];
  return all;
}

/** task id → worker, from the task keys. */
export async function assignment(client: Etcd3, keys: KeyLayout): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  for (const key of await client.getAll().prefix(keys.tasksPrefix).keys()) {
    const parts = keys.parseTask(key);
    if (parts) found.set(parts.taskId, parts.worker);
  }
  return found;
}

/**
 * A hand-written worker: registered under its own lease; it reports every task put under its prefix as
 * `running` and deletes the status once the task is "stopped" — after `stopDelayMs`, or when the test
 * calls `release(id)` if `manualStop` is set.
 */
export class FakeWorker {
  private readonly watcher: PrefixWatcher;
  private readonly waitingToStop = new Map<string, () => void>();
  private readonly stopTimers = new Map<string, NodeJS.Timeout>();
  /** Each task's last status write: its deletion goes after it, as a real worker orders one task's writes. */
  private readonly reported = new Map<string, Promise<void>>();

  private constructor(
    readonly name: string,
    readonly session: LeaseSession,
    private readonly client: Etcd3,
    private readonly keys: KeyLayout,
    private readonly options: { stopDelayMs: number; manualStop: boolean; reports: boolean },
  ) {
    this.watcher = new PrefixWatcher(client, keys.workerTasksPrefix(name));
    this.watcher.on("change", (change) => {
      const parts = keys.parseTask(change.key);
      if (!parts) return;
      if (change.type === "put")
        this.reported.set(
          parts.taskId,
          this.report(parts.taskId).catch(() => undefined),
        );
      else this.scheduleStop(parts.taskId);
    });
  }

  static async start(
    client: Etcd3,
    keys: KeyLayout,
    name: string,
    options: {
      ttlMs?: number;
      stopDelayMs?: number;
      manualStop?: boolean;
      capacity?: number;
      /** false: never writes a status key (a worker without a handler, or one that never reported yet). */
      reports?: boolean;
    } = {},
  ): Promise<FakeWorker> {
    const session = await LeaseSession.grant(client, { ttlMs: options.ttlMs ?? 2_000 });
    const worker = new FakeWorker(name, session, client, keys, {
      stopDelayMs: options.stopDelayMs ?? 0,
      manualStop: options.manualStop ?? false,
      reports: options.reports ?? true,
    });
    cleanups.push(() => worker.stop());
    for (const id of (await worker.watcher.start()).keys()) {
      const parts = keys.parseTask(id);
      if (parts) await worker.report(parts.taskId);
    }
    const info = { name, host: "test", pid: 0, version: "test", startedAt: new Date().toISOString() };
    await session.lease
      .put(keys.worker(name))
      .value(JSON.stringify(options.capacity ? { ...info, capacity: options.capacity } : info));
    return worker;
  }

  /** Lets a task removed from this worker finish stopping (with `manualStop`). */
  release(taskId: string): void {
    this.waitingToStop.get(taskId)?.();
  }

  get stopping(): string[] {
    return [...this.waitingToStop.keys()];
  }

  /** Leaves cleanly: the lease is revoked, so the registration and every status key go at once. */
  async stop(): Promise<void> {
    for (const timer of this.stopTimers.values()) clearTimeout(timer);
    await this.watcher.close();
    await this.session.close();
  }

  private async report(taskId: string): Promise<void> {
    if (!this.options.reports) return;
    const status = { state: "running", attempt: 1, since: new Date().toISOString() };
    await this.session.lease.put(this.keys.status(this.name, taskId)).value(JSON.stringify(status));
  }

  private scheduleStop(taskId: string): void {
    const finish = () => {
      this.waitingToStop.delete(taskId);
      this.stopTimers.delete(taskId);
      // After the task's status write (they go on two connections: a deletion could land first and
      // leave a status behind that no stop removes).
      void (this.reported.get(taskId) ?? Promise.resolve()).then(() => {
        if (!this.session.active) return;
        return this.client
          .delete()
          .key(this.keys.status(this.name, taskId))
          .exec()
          .then(
            () => undefined,
            () => undefined,
          );
      });
    };
    if (this.options.manualStop) this.waitingToStop.set(taskId, finish);
    else this.stopTimers.set(taskId, setTimeout(finish, this.options.stopDelayMs));
  }
}

/** Every status change under the root, to check that no task ever runs on two workers at once. */
export class StatusRecorder {
  private readonly watcher: PrefixWatcher;
  private readonly owners = new Map<string, Set<string>>();
  /** Tasks seen with a status on two workers at the same revision. */
  readonly overlaps: Array<{ task: string; workers: string[]; revision: number }> = [];

  constructor(
    client: Etcd3,
    private readonly keys: KeyLayout,
  ) {
    this.watcher = new PrefixWatcher(client, keys.statusPrefix);
    this.watcher.on("change", (change) => {
      const parts = keys.parseStatus(change.key);
      if (!parts) return;
      const owners = this.owners.get(parts.taskId) ?? new Set<string>();
      if (change.type === "put") owners.add(parts.worker);
      else owners.delete(parts.worker);
      this.owners.set(parts.taskId, owners);
      if (owners.size > 1)
        this.overlaps.push({ task: parts.taskId, workers: [...owners], revision: change.revision });
    });
    cleanups.push(() => this.watcher.close());
  }

  async start(): Promise<void> {
    for (const key of (await this.watcher.start()).keys()) {
      const parts = this.keys.parseStatus(key);
      if (!parts) continue;
      const owners = this.owners.get(parts.taskId) ?? new Set<string>();
      this.owners.set(parts.taskId, owners.add(parts.worker));
    }
  }
}

/** Counts every put under a prefix (e.g. how often a task key was written). */
export async function countPuts(
  client: Etcd3,
  prefix: string,
): Promise<{ puts: Map<string, number>; close(): Promise<void> }> {
  const puts = new Map<string, number>();
  const watcher = new PrefixWatcher(client, prefix);
  watcher.on("change", (change) => {
    if (change.type === "put") puts.set(change.key, (puts.get(change.key) ?? 0) + 1);
  });
  await watcher.start();
  cleanups.push(() => watcher.close());
  return { puts, close: () => watcher.close() };
}

/** The election key of the current leader and its lease (to revoke it from outside). */
export async function leaderLease(
  client: Etcd3,
  keys: KeyLayout,
): Promise<{ key: string; lease: string } | undefined> {
  const response = await client.kv.range({
    key: Buffer.from(keys.electionCandidatesPrefix),
    range_end: prefixRangeEnd(keys.electionCandidatesPrefix),
    sort_target: SortTarget.Create,
    sort_order: SortOrder.Ascend,
    limit: 1,
  });
  const kv = response.kvs[0];
  return kv ? { key: kv.key.toString(), lease: kv.lease } : undefined;
}

/**
 * Runs `before` ahead of every transaction `client` sends that `matches` (the transaction then goes to
 * etcd unchanged): lets a test place an operator's action at an exact point of a leader's writes.
 */
export function beforeTxn(
  client: Etcd3,
  matches: (request: ITxnRequest) => boolean,
  before: (request: ITxnRequest) => Promise<void>,
): void {
  const txn = client.kv.txn.bind(client.kv);
  client.kv.txn = async (request, options) => {
    if (matches(request)) await before(request);
    return txn(request, options);
  };
}

/** Keys a transaction writes on success (puts and deletes). */
export function txnWrites(request: ITxnRequest): { puts: string[]; deletes: string[] } {
  const puts: string[] = [];
  const deletes: string[] = [];
  for (const op of request.success ?? []) {
    if (op.request_put) puts.push(String(op.request_put.key));
    if (op.request_delete_range) deletes.push(String(op.request_delete_range.key));
  }
  return { puts, deletes };
}
