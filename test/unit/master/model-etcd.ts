/**
 * A small model of etcd for the master's interleaving properties: one revisioned key space with
 * etcd's transaction semantics (compares on version, create, mod and lease; puts, deletes and ranges
 * applied atomically at one revision), the subset of the etcd3 client the schedule uses, and a status
 * view that, like a PrefixWatcher, advances only on events under its prefix. Every request and every
 * event delivery waits for the fast-check scheduler, which picks their order.
 */
import type fc from "fast-check";
import type { Etcd3, ICompare, IKeyValue, IRangeRequest, IRequestOp, ITxnRequest } from "etcd3";
import type { ResyncEvent, WatchChange } from "../../../src/watcher/index.js";
import type { StatusSource, StatusView } from "../../../src/master/status-source.js";

interface Stored {
  value: string;
  create: number;
  mod: number;
  version: number;
  lease: string;
}

export type ModelEvent = { type: "put"; key: string; value: string } | { type: "delete"; key: string };

/** A committed write: what it changed, at which revision. */
export interface Commit {
  revision: number;
  events: ModelEvent[];
}

export class ModelEtcd {
  revision = 1;
  readonly kvs = new Map<string, Stored>();
  readonly commits: Commit[] = [];
  private readonly listeners = new Set<(commit: Commit) => void>();

  constructor(private readonly s: fc.Scheduler) {}

  /** Calls `listener` synchronously after every committed write (invariant checks, worker reactions). */
  onCommit(listener: (commit: Commit) => void): void {
    this.listeners.add(listener);
  }

  /** Writes at once (the test's own hand: seeding, an operator, a worker), at one new revision. */
  write(ops: ReadonlyArray<ModelEvent & { lease?: string }>): number {
    const events: ModelEvent[] = [];
    const revision = this.revision + 1;
    for (const op of ops) {
      if (op.type === "put") {
        const before = this.kvs.get(op.key);
        this.kvs.set(op.key, {
          value: op.value,
          create: before?.create ?? revision,
          mod: revision,
          version: (before?.version ?? 0) + 1,
          lease: op.lease ?? "0",
        });
        events.push({ type: "put", key: op.key, value: op.value });
      } else if (this.kvs.delete(op.key)) {
        events.push({ type: "delete", key: op.key });
      }
    }
    if (events.length === 0) return this.revision;
    this.revision = revision;
    const commit = { revision, events };
    this.commits.push(commit);
    for (const listener of this.listeners) listener(commit);
    return revision;
  }

  keysUnder(prefix: string): string[] {
    return [...this.kvs.keys()].filter((key) => key.startsWith(prefix)).sort();
  }

  /** The subset of the etcd3 client that reads and writes a schedule: kv.txn, kv.range, getAll. */
  client(): Etcd3 {
    const txn = async (request: ITxnRequest) => {
      await this.s.schedule(Promise.resolve(), describe(request));
      const writes: Array<ModelEvent & { lease?: string }> = [];
      const { succeeded, responses } = this.apply(request, writes);
      const revision = this.write(writes);
      return { succeeded, header: { revision: String(revision) }, responses };
    };
    const range = async (request: IRangeRequest) => {
      await this.s.schedule(Promise.resolve(), `range ${String(request.key)}`);
      return this.range(request);
    };
    const getAll = () => {
      let prefix = "";
      const builder = {
        prefix: (value: string) => ((prefix = value), builder),
        sort: () => builder,
        options: () => builder,
        keys: async () => {
          await this.s.schedule(Promise.resolve(), `keys ${prefix}`);
          return this.keysUnder(prefix);
        },
      };
      return builder;
    };
    return { kv: { txn, range }, getAll } as unknown as Etcd3;
  }

  /** The hand-off gate's status source over this model (view and reads both wait for the scheduler). */
  statusSource(prefix: string): StatusSource {
    return {
      view: new ModelView(this, this.s, prefix),
      read: (keys) => this.readStatuses(prefix, keys),
      readWorkers: (workers) =>
        this.readStatuses(
          prefix,
          workers.flatMap((worker) => this.keysUnder(`${prefix}${worker}/`)),
        ),
    };
  }

  private async readStatuses(prefix: string, keys?: readonly string[]) {
    await this.s.schedule(Promise.resolve(), "read statuses");
    const wanted = keys ?? this.keysUnder(prefix);
    return {
      revision: this.revision,
      keys: wanted.filter((key) => (this.kvs.get(key)?.lease ?? "0") !== "0"),
    };
  }

  /** A transaction's compares (nested ones too) against the state before it, its writes gathered in `writes`. */
  private apply(request: ITxnRequest, writes: Array<ModelEvent & { lease?: string }>) {
    const succeeded = (request.compare ?? []).every((compare) => this.holds(compare));
    const ops = (succeeded ? request.success : request.failure) ?? [];
    const responses = ops.map((op: IRequestOp): unknown => {
      if (op.request_range) return { response_range: this.range(op.request_range) };
      if (op.request_txn) return { response_txn: this.apply(op.request_txn as ITxnRequest, writes) };
      if (op.request_put) {
        const { key, value, lease } = op.request_put;
        writes.push({ type: "put", key: String(key), value: String(value), lease: String(lease ?? "0") });
        return { response_put: {} };
      }
      if (op.request_delete_range) writes.push({ type: "delete", key: String(op.request_delete_range.key) });
      return { response_delete_range: {} };
    });
    return { succeeded, responses };
  }

  private holds(compare: ICompare): boolean {
    const stored = this.kvs.get(String(compare.key));
    const [actual, expected] = (() => {
      switch (compare.target) {
        case 0:
        case "Version":
          return [stored?.version ?? 0, Number(compare.version)];
        case 1:
        case "Create":
          return [stored?.create ?? 0, Number(compare.create_revision)];
        case 2:
        case "Mod":
          return [stored?.mod ?? 0, Number(compare.mod_revision)];
        case 4:
        case "Lease":
          return [Number(stored?.lease ?? 0), Number(compare.lease)];
        default:
          throw new Error(`model etcd: compare target ${String(compare.target)} not modelled`);
      }
    })();
    switch (compare.result ?? 0) {
      case 0:
      case "Equal":
        return actual === expected;
      case 1:
      case "Greater":
        return actual > expected;
      case 2:
      case "Less":
        return actual < expected;
      default:
        return actual !== expected;
    }
  }

  private range(request: IRangeRequest): { kvs: IKeyValue[]; more: boolean; count: string } {
    const start = String(request.key);
    const at = Number(request.revision ?? 0);
    if (at > 0 && at < this.revision && request.range_end === undefined) {
      // One key at an earlier revision (keys only): whether it existed then, from the commits.
      const last = this.commits
        .filter((commit) => commit.revision <= at)
        .flatMap((commit) => commit.events.filter((event) => event.key === start))
        .at(-1);
      const kvs =
        last?.type === "put" ? [{ key: Buffer.from(start), value: Buffer.from("") } as IKeyValue] : [];
      return { kvs, more: false, count: String(kvs.length) };
    }
    const end = request.range_end === undefined ? undefined : String(request.range_end);
    const keys =
      end === undefined
        ? this.kvs.has(start)
          ? [start]
          : []
        : [...this.kvs.keys()].filter((key) => key >= start && (end === "\0" || key < end)).sort();
    const kvs = keys.map((key) => {
      const stored = this.kvs.get(key) as Stored;
      return {
        key: Buffer.from(key),
        value: Buffer.from(request.keys_only ? "" : stored.value),
        create_revision: String(stored.create),
        mod_revision: String(stored.mod),
        version: String(stored.version),
        lease: stored.lease,
      } as IKeyValue;
    });
    return { kvs, more: false, count: String(kvs.length) };
  }
}

/** A PrefixWatcher's behaviour: a snapshot, then each commit under the prefix, delivered in order when the scheduler says. */
class ModelView implements StatusView {
  readonly entries = new Map<string, string>();
  revision = 0;
  private readonly changeListeners: Array<(change: WatchChange) => void> = [];
  private delivering = Promise.resolve();
  private closed = false;

  constructor(
    private readonly etcd: ModelEtcd,
    private readonly s: fc.Scheduler,
    private readonly prefix: string,
  ) {}

  on(event: "change", listener: (change: WatchChange) => void): unknown;
  on(event: "resync", listener: (event: ResyncEvent) => void): unknown;
  on(event: "change" | "resync", listener: ((change: WatchChange) => void) | ((event: ResyncEvent) => void)) {
    if (event === "change") this.changeListeners.push(listener as (change: WatchChange) => void);
    return this;
  }

  async start(): Promise<unknown> {
    for (const key of this.etcd.keysUnder(this.prefix))
      this.entries.set(key, this.etcd.kvs.get(key)?.value ?? "");
    this.revision = this.etcd.revision;
    this.etcd.onCommit((commit) => {
      const mine = commit.events.filter((event) => event.key.startsWith(this.prefix));
      if (mine.length === 0) return;
      this.delivering = this.delivering
        .then(() => this.s.schedule(Promise.resolve(), `watch ${this.prefix}@${commit.revision}`))
        .then(() => this.deliver(commit.revision, mine));
    });
    return this.entries;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  hasLease(key: string): boolean {
    return this.entries.has(key) && (this.etcd.kvs.get(key)?.lease ?? "0") !== "0";
  }

  private deliver(revision: number, events: ModelEvent[]): void {
    if (this.closed) return;
    for (const event of events) {
      if (event.type === "put") this.entries.set(event.key, event.value);
      else this.entries.delete(event.key);
    }
    this.revision = revision;
    for (const event of events) {
      const change: WatchChange =
        event.type === "put"
          ? { type: "put", key: event.key, value: event.value, revision, synthetic: false }
          : { type: "delete", key: event.key, revision, synthetic: false };
      for (const listener of this.changeListeners) listener(change);
    }
  }
}

function describe(request: ITxnRequest): string {
  const ops = request.success ?? [];
  const puts = ops
    .filter((op) => op.request_put)
    .map((op) => String(op.request_put?.key).split("/").slice(-2).join("/"));
  const deletes = ops
    .filter((op) => op.request_delete_range)
    .map((op) => String(op.request_delete_range?.key).split("/").slice(-2).join("/"));
  if (puts.length + deletes.length === 0) return "txn read";
  return `txn put[${puts.join(",")}] del[${deletes.join(",")}]${(request.compare?.length ?? 0) > 1 ? " unless-paused" : ""}`;
}
