import type { Etcd3, IEvent, IKeyValue, IWatchResponse } from "etcd3";
import { type Logger, prefixRangeEnd, requireLeader, silentLogger, readPrefixPaged } from "../node/index.js";
import { delay, exponentialBackoff, SafeEmitter, unlessAborted } from "../runtime/index.js";
import { ChangeQueue } from "./change-queue.js";
import { abortedError, closeStream, FragmentJoiner, type WatchStream } from "./watch-stream.js";

export type WatchChange =
  | { type: "put"; key: string; value: string; revision: number; synthetic: boolean }
  | { type: "delete"; key: string; previous?: string; revision: number; synthetic: boolean };

/** Emitted after the view was rebuilt from a fresh read (its differences were emitted as synthetic changes first). */
export interface ResyncEvent {
  reason: string;
  fromRevision: number;
  toRevision: number;
  puts: number;
  deletes: number;
}

interface PrefixWatcherEvents {
  change: [WatchChange];
  resync: [ResyncEvent];
  error: [Error];
}

export type PrefixSnapshot = { revision: number; kvs: IKeyValue[] };

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
  /** Reads the snapshot at one revision: at least every kept key and what the sink needs (default: the whole prefix). */
  snapshot?: () => Promise<PrefixSnapshot>;
}

/** Why one watch stream stopped: `resync` means the history it needed is gone and the prefix must be read again. */
type StreamEnd = { resync: string } | { error: Error };

/**
 * A live view of every key under a prefix: a snapshot at revision R, then each change from R+1 in
 * revision order. When etcd can no longer replay what was missed (compaction, a replaced cluster)
 * it reads the prefix again and emits the difference as synthetic changes, so nothing is silently lost.
 * We drive the raw watch stream because etcd3's Watcher resumes from the header revision (which can
 * run ahead of the events delivered) and turns compaction into a bare error.
 */
export class PrefixWatcher extends SafeEmitter<PrefixWatcherEvents> {
  private readonly values = new Map<string, string>();
  private readonly modRevisions = new Map<string, number>();
  /** Keys written without a lease (a hand-written key where a lease is expected is not trusted). */
  private readonly leaseless = new Set<string>();
  private readonly iterators = new Set<ChangeQueue<WatchChange>>();
  private readonly logger: Logger;
  private readonly keep: (key: string) => boolean;
  private readonly sink?: PrefixSink;
  private readonly closing = new AbortController();
  private readonly backoff = exponentialBackoff({ initialMs: 50, maxMs: 2_000 });
  private currentRevision = 0;
  private started = false;
  private stream?: WatchStream;
  private endStream?: (end: StreamEnd) => void;
  private running?: Promise<void>;
  private closed?: Promise<void>;

  constructor(
    private readonly client: Etcd3,
    readonly prefix: string,
    private readonly options: PrefixWatcherOptions = {},
  ) {
    super();
    this.keep = options.keep ?? (() => true);
    this.sink = options.sink;
    this.logger = (options.logger ?? silentLogger).child({ watch: prefix });
    this.listenerErrorLog = this.logger;
  }

  /**
   * Reads the prefix at revision R, then watches from R+1; resolves with the snapshot (the snapshot is NOT
   * emitted as changes). When the read fails it rejects and may be called again.
   */
  async start(signal?: AbortSignal): Promise<ReadonlyMap<string, string>> {
    if (this.started) throw new Error(`PrefixWatcher for ${this.prefix} was already started`);
    this.started = true;
    if (signal?.aborted || this.closing.signal.aborted) throw abortedError(this.prefix);
    const stop = AbortSignal.any(signal ? [signal, this.closing.signal] : [this.closing.signal]);
    let snapshot: PrefixSnapshot;
    try {
      snapshot = await unlessAborted(this.readPrefix(), stop, () => abortedError(this.prefix));
    } catch (error) {
      this.started = false; // nothing is running yet, so the caller may try again
      throw error;
    }
    this.replaceView(snapshot);
    signal?.addEventListener("abort", () => void this.close(), { once: true, signal: this.closing.signal });
    this.running = this.run();
    this.logger.debug({ revision: this.currentRevision, keys: this.values.size }, "watch started");
    return new Map(this.values);
  }

  /** The current view: key → value. */
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
    if (this.closing.signal.aborted) queue.end();
    else this.iterators.add(queue);
    return queue;
  }

  /** Stops watching; leaves no stream or timer behind. Idempotent. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      this.closing.abort(abortedError(this.prefix));
      this.endStream?.({ error: abortedError(this.prefix) });
      for (const queue of this.iterators) queue.end();
      this.iterators.clear();
      await this.running;
    })();
    return this.closed;
  }

  private async run(): Promise<void> {
    let resyncReason: string | undefined;
    while (!this.closing.signal.aborted) {
      try {
        if (resyncReason) {
          await this.resync(resyncReason);
          resyncReason = undefined;
        }
        const end = await this.watchUntilEnd();
        if (this.closing.signal.aborted) break;
        if ("resync" in end) {
          resyncReason = end.resync;
          continue;
        }
        throw end.error;
      } catch (error) {
        if (this.closing.signal.aborted) break;
        this.report(error as Error);
        await delay(this.backoff.next(), this.closing.signal).catch(() => undefined);
      }
    }
  }

  /** Opens one watch stream from the view's revision + 1 and resolves when it can no longer be used. */
  private async watchUntilEnd(): Promise<StreamEnd> {
    // Require a leader: a member cut off from its quorum must end the watch, not keep it silent.
    const opening = this.client.watchClient.watch({ interceptors: [requireLeader] });
    // Closed while the stream was opening: it still opens, and must be closed here, since an open
    // stream keeps its connection (and the process) alive after the client is closed.
    opening.then(
      (stream) => {
        if (this.closing.signal.aborted) closeStream(stream);
      },
      () => undefined,
    );
    const stream = await unlessAborted(opening, this.closing.signal, () => abortedError(this.prefix));
    return new Promise<StreamEnd>((resolve) => {
      let ended = false;
      const finish = (end: StreamEnd) => {
        if (ended) return;
        ended = true;
        if (this.stream === stream) {
          this.stream = undefined;
          this.endStream = undefined;
        }
        closeStream(stream);
        resolve(end);
      };
      // The error listener stays attached: our own cancel() makes the stream emit CANCELLED later.
      stream.on("error", (error) => finish({ error }));
      stream.on("end", () => finish({ error: new Error("watch stream ended by etcd") }));
      if (this.closing.signal.aborted) return finish({ error: abortedError(this.prefix) });
      this.stream = stream;
      this.endStream = finish;
      const fragments = new FragmentJoiner();
      stream.on("data", (response: IWatchResponse) => this.onResponse(stream, fragments.join(response)));
      stream.write({
        create_request: {
          key: Buffer.from(this.prefix),
          range_end: prefixRangeEnd(this.prefix),
          start_revision: this.currentRevision + 1,
          // A response catching up on history may be larger than one message may be: etcd splits it.
          fragment: true,
          // No progress notifications: etcd before 3.4.25/3.5.8 can send one ahead of the events it covers.
        },
      });
    });
  }

  /** `response` is undefined while a fragmented one is still arriving. */
  private onResponse(stream: WatchStream, response: IWatchResponse | undefined): void {
    if (!response || this.stream !== stream || !this.endStream) return;
    const end = this.handleResponse(response);
    if (end) this.endStream(end);
  }

  /** Applies one watch response; returns why the stream must end, if it must. */
  private handleResponse(response: IWatchResponse): StreamEnd | undefined {
    const compactRevision = Number(response.compact_revision);
    if (compactRevision > 0) {
      this.logger.warn(
        { revision: this.currentRevision, compactRevision },
        "watch history compacted; reading the prefix again",
      );
      return { resync: `revision ${this.currentRevision + 1} compacted (at ${compactRevision})` };
    }
    if (response.canceled) {
      const reason = response.cancel_reason || "no reason given";
      return { error: new Error(`etcd canceled the watch on ${this.prefix}: ${reason}`) };
    }
    const headerRevision = Number(response.header.revision);
    if (response.created) {
      this.backoff.reset();
      // A store behind our view is another history (restored or replaced cluster): only a fresh read is right.
      if (headerRevision < this.currentRevision) {
        return { resync: `etcd revision ${headerRevision} is behind the view's ${this.currentRevision}` };
      }
      this.logger.debug({ from: this.currentRevision + 1 }, "watch connected");
    } else if (response.events.length > 0) {
      this.applyEvents(response.events);
    }
    return undefined;
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
          this.values.set(key, value);
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
        this.sink?.applied(revision, events.slice(first, index));
      }
      this.publish(changes);
    }
  }

  /** Reads the prefix again and emits what changed against the view (by mod revision, so a rewrite with the same value counts). */
  private async resync(reason: string): Promise<void> {
    const fromRevision = this.currentRevision;
    const response = await unlessAborted(this.readPrefix(), this.closing.signal, () =>
      abortedError(this.prefix),
    );
    const toRevision = response.revision;
    const fresh = new Map(
      response.kvs.flatMap((kv) => (this.keep(kv.key.toString()) ? [[kv.key.toString(), kv] as const] : [])),
    );
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
    this.replaceView(response);
    const puts = changes.filter((change) => change.type === "put").length;
    const event: ResyncEvent = { reason, fromRevision, toRevision, puts, deletes: changes.length - puts };
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
      this.values.set(key, kv.value.toString());
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

  /** Errors are reported, never fatal: the watcher keeps retrying until closed. */
  private report(error: Error): void {
    this.logger.warn({ err: error, revision: this.currentRevision }, "watch interrupted; retrying");
    this.emit("error", error);
  }
}
