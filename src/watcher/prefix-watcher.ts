import type { Etcd3, IEvent, IKeyValue } from "etcd3";
import { type Logger, prefixRangeEnd, silentLogger, readPrefixPaged } from "../node/index.js";
import { SafeEmitter } from "../runtime/index.js";
import { ChangeQueue } from "./change-queue.js";
import { WatchDriver, type WatchResync, type WatchSnapshot } from "./watch-driver.js";
import type { MemberHandler, WatchGroup, WatchRunner } from "./watch-group.js";

export type WatchChange =
  | { type: "put"; key: string; value: string; revision: number; synthetic: boolean }
  | { type: "delete"; key: string; previous?: string; revision: number; synthetic: boolean };

/** Emitted after the view was rebuilt from a fresh read (its differences were emitted as synthetic changes first). */
export interface ResyncEvent extends WatchResync {
  puts: number;
  deletes: number;
}

interface PrefixWatcherEvents {
  change: [WatchChange];
  resync: [ResyncEvent];
  error: [Error];
}

export type PrefixSnapshot = WatchSnapshot;

/** Gets the raw key-values, kept or not: each snapshot (first and resyncs), then each revision's events in order. */
export interface PrefixSink {
  replaced(snapshot: PrefixSnapshot): void;
  applied(revision: number, events: readonly IEvent[]): void;
}

export interface PrefixWatcherOptions {
  logger?: Logger;
  /** Which keys the watcher's own view holds and emits changes for (default: all); the revision follows every key. */
  keep?: (key: string) => boolean;
  sink?: PrefixSink;
  /** Reads the snapshot at one revision: at least every kept key and what the sink needs (default: the whole prefix; not used in a `group`). */
  snapshot?: () => Promise<PrefixSnapshot>;
  /**
   * Watch within this group: its one snapshot read and one stream serve every member (`snapshot` is
   * then not used); starting or closing any member starts or closes them all.
   */
  group?: WatchGroup;
  /** What the view keeps of a value (default: all of it); a put's change carries the whole value, a deletion's `previous` the kept one. */
  storedValue?: (value: string) => string;
}

/**
 * A live view of every key under a prefix: a snapshot at revision R, then each change from R+1 in
 * revision order. When etcd can no longer replay what was missed (compaction, a replaced cluster)
 * it reads the prefix again and emits the difference as synthetic changes, so nothing is silently lost.
 * The stream, its reconnects and its resyncs are a `WatchDriver`'s over the one range of the prefix.
 */
export class PrefixWatcher extends SafeEmitter<PrefixWatcherEvents> {
  private readonly values = new Map<string, string>();
  private readonly modRevisions = new Map<string, number>();
  /** Keys written without a lease (a hand-written key where a lease is expected is not trusted). */
  private readonly leaseless = new Set<string>();
  private readonly iterators = new Set<ChangeQueue<WatchChange>>();
  private readonly logger: Logger;
  private readonly keep: (key: string) => boolean;
  private readonly stored: (value: string) => string;
  private readonly sink?: PrefixSink;
  private readonly driver: WatchRunner;
  private currentRevision = 0;

  constructor(
    private readonly client: Etcd3,
    readonly prefix: string,
    private readonly options: PrefixWatcherOptions = {},
  ) {
    super();
    this.keep = options.keep ?? (() => true);
    this.stored = options.storedValue ?? ((value) => value);
    this.sink = options.sink;
    this.logger = (options.logger ?? silentLogger).child({ watch: prefix });
    this.listenerErrorLog = this.logger;
    const handler: MemberHandler = {
      revision: () => this.currentRevision,
      replace: (snapshot, resync) => (resync ? this.resync(snapshot, resync) : this.replaceView(snapshot)),
      events: (events) => this.applyEvents(events),
      interrupted: (error) => this.emit("error", error),
      closing: () => {
        for (const queue of this.iterators) queue.end();
        this.iterators.clear();
      },
    };
    if (options.group) {
      this.driver = options.group.join(prefix, handler);
      return;
    }
    const range = { key: Buffer.from(prefix), range_end: prefixRangeEnd(prefix) };
    this.driver = new WatchDriver(
      client,
      [range],
      { ...handler, read: () => this.readPrefix(), events: (_range, events) => handler.events(events) },
      this.logger,
      { watch: prefix, watcher: `PrefixWatcher for ${prefix}` },
    );
  }

  /**
   * Reads the prefix at revision R, then watches from R+1; resolves with the snapshot (the snapshot is NOT
   * emitted as changes). When the read fails it rejects and may be called again.
   */
  async start(signal?: AbortSignal): Promise<ReadonlyMap<string, string>> {
    await this.driver.start(signal);
    this.logger.debug({ revision: this.currentRevision, keys: this.values.size }, "watch started");
    return new Map(this.values);
  }

  /** The current view: key → value (as `storedValue` keeps it). */
  get entries(): ReadonlyMap<string, string> {
    return this.values;
  }

  /** The revision the view reflects. */
  get revision(): number {
    return this.currentRevision;
  }

  /** The revision that last wrote `key` in the view, or undefined when the key is absent. */
  modRevision(key: string): number | undefined {
    return this.modRevisions.get(key);
  }

  /** True when `key` is in the view and was written under a lease. */
  hasLease(key: string): boolean {
    return this.values.has(key) && !this.leaseless.has(key);
  }

  /** Every change after this call, in order (buffered per iterator); ends on close. */
  changes(): AsyncIterableIterator<WatchChange> {
    const queue = new ChangeQueue<WatchChange>((done) => this.iterators.delete(done));
    if (this.driver.isClosing) queue.end();
    else this.iterators.add(queue);
    return queue;
  }

  /** Stops watching; leaves no stream or timer behind. Idempotent. */
  close(): Promise<void> {
    return this.driver.close();
  }

  /** Applies one revision at a time (a transaction's events arrive together) and emits after each. */
  private applyEvents(events: IEvent[]): void {
    let index = 0;
    while (index < events.length) {
      const revision = Number(events[index].kv.mod_revision);
      const first = index;
      const changes: WatchChange[] = [];
      for (; index < events.length && Number(events[index].kv.mod_revision) === revision; index++) {
        if (revision <= this.currentRevision) continue;
        const event = events[index];
        const key = event.kv.key.toString();
        if (!this.keep(key)) continue;
        if (event.type === "Put") {
          const value = event.kv.value.toString();
          this.values.set(key, this.stored(value));
          this.modRevisions.set(key, revision);
          this.noteLease(key, event.kv);
          changes.push({ type: "put", key, value, revision, synthetic: false });
        } else {
          const previous = this.values.get(key);
          this.values.delete(key);
          this.modRevisions.delete(key);
          this.leaseless.delete(key);
          changes.push({ type: "delete", key, previous, revision, synthetic: false });
        }
      }
      if (revision > this.currentRevision) {
        this.currentRevision = revision;
        // The view holds these changes already: they are emitted even when the sink throws (its driver then resyncs).
        try {
          this.sink?.applied(revision, events.slice(first, index));
        } finally {
          this.publish(changes);
        }
      }
    }
  }

  /** Adopts a fresh read and emits what changed against the view (by mod revision, so a rewrite with the same value counts). */
  private resync(snapshot: PrefixSnapshot, resync: WatchResync): void {
    const fresh = new Map(
      snapshot.kvs.flatMap((kv) => (this.keep(kv.key.toString()) ? [[kv.key.toString(), kv] as const] : [])),
    );
    const toRevision = snapshot.revision;
    const changes: WatchChange[] = [];
    for (const [key, previous] of this.values) {
      if (!fresh.has(key)) {
        changes.push({ type: "delete", key, previous, revision: toRevision, synthetic: true });
      }
    }
    for (const [key, kv] of fresh) {
      if (this.modRevisions.get(key) !== Number(kv.mod_revision)) {
        changes.push({ type: "put", key, value: kv.value.toString(), revision: toRevision, synthetic: true });
      }
    }
    this.replaceView(snapshot);
    const puts = changes.filter((change) => change.type === "put").length;
    const event: ResyncEvent = { ...resync, puts, deletes: changes.length - puts };
    this.logger.warn(event, "watch resynchronised from a fresh read");
    this.publish(changes);
    this.emit("resync", event);
  }

  /** The prefix at one revision, in pages (a worker's or the master's view can hold 100,000 keys). */
  private readPrefix(): Promise<PrefixSnapshot> {
    return this.options.snapshot?.() ?? readPrefixPaged(this.client, this.prefix);
  }

  private replaceView(response: PrefixSnapshot): void {
    this.values.clear();
    this.modRevisions.clear();
    this.leaseless.clear();
    for (const kv of response.kvs) {
      const key = kv.key.toString();
      if (!this.keep(key)) continue;
      this.values.set(key, this.stored(kv.value.toString()));
      this.modRevisions.set(key, Number(kv.mod_revision));
      this.noteLease(key, kv);
    }
    this.currentRevision = response.revision;
    this.sink?.replaced(response);
  }

  private noteLease(key: string, kv: IKeyValue): void {
    if (kv.lease === "0") this.leaseless.add(key);
    else this.leaseless.delete(key);
  }

  private publish(changes: WatchChange[]): void {
    for (const change of changes) {
      for (const queue of this.iterators) queue.push(change);
      this.emit("change", change);
    }
  }
}
