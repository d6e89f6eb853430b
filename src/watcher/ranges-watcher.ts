import type { Etcd3, IEvent, IKeyValue, IWatchResponse } from "etcd3";
import { type Logger, requireLeader, silentLogger } from "../node/index.js";
import { delay, exponentialBackoff, SafeEmitter, unlessAborted } from "../runtime/index.js";
import type { ResyncEvent } from "./prefix-watcher.js";
import { type RevisionBatch, RevisionMerge } from "./revision-merge.js";
import { abortedError, closeStream, FragmentJoiner, type WatchStream } from "./watch-stream.js";

/** A key range as etcd takes it: from `key` up to `range_end`, exclusive. */
export interface WatchedRange {
  key: Buffer;
  range_end: Buffer;
}

/** Gets each snapshot (first and resyncs), then each revision's decoded events in revision order. */
export interface RangesSink<E> {
  replaced(snapshot: { revision: number; kvs: IKeyValue[] }): void;
  applied(revision: number, events: readonly E[]): void;
}

export interface RangesWatcherOptions<E> {
  /** What to keep of an event (undefined: nothing, only its revision counts): decoded as it arrives. */
  decode: (event: IEvent) => E | undefined;
  sink: RangesSink<E>;
  /** Reads, at one revision, every key the sink needs (at least those of `ranges`). */
  snapshot: () => Promise<{ revision: number; kvs: IKeyValue[] }>;
  logger?: Logger;
}

interface RangesWatcherEvents {
  resync: [Omit<ResyncEvent, "puts" | "deletes">];
  error: [Error];
}

type StreamEnd = { resync: string } | { error: Error };

/**
 * A compaction-safe watch of several disjoint key ranges, one watch each on ONE stream, merged into one
 * revision order (`RevisionMerge`): the sink sees a snapshot at r0, then every event of the ranges
 * after r0 revision by revision, as a single watch of one range would show them. etcd sends nothing
 * of the keys between the ranges. A revision is applied once every range's watch has delivered past
 * it, so a range with no writes holds the others back until it gets one (its owner writes a mark).
 * Compaction, a lost history or a replaced cluster: a fresh snapshot and new watches from it.
 */
export class RangesWatcher<E> extends SafeEmitter<RangesWatcherEvents> {
  private readonly logger: Logger;
  private readonly closing = new AbortController();
  private readonly backoff = exponentialBackoff({ initialMs: 50, maxMs: 2_000 });
  private merge: RevisionMerge<E>;
  private started = false;
  private endStream?: (end: StreamEnd) => void;
  private running?: Promise<void>;
  private closed?: Promise<void>;

  constructor(
    private readonly client: Etcd3,
    private readonly ranges: readonly WatchedRange[],
    private readonly options: RangesWatcherOptions<E>,
  ) {
    super();
    this.merge = new RevisionMerge(ranges.length, 0);
    this.logger = (options.logger ?? silentLogger).child({
      watch: ranges.map((range) => `[${range.key}, ${range.range_end})`).join(" "),
    });
    this.listenerErrorLog = this.logger;
  }

  /** Reads the snapshot, then watches every range from its revision + 1; rejects (and may be called again) when the read fails. */
  async start(signal?: AbortSignal): Promise<void> {
    if (this.started) throw new Error("RangesWatcher was already started");
    this.started = true;
    if (signal?.aborted || this.closing.signal.aborted) throw abortedError("ranges");
    const stop = AbortSignal.any(signal ? [signal, this.closing.signal] : [this.closing.signal]);
    try {
      this.replace(await unlessAborted(this.options.snapshot(), stop, () => abortedError("ranges")));
    } catch (error) {
      this.started = false;
      throw error;
    }
    signal?.addEventListener("abort", () => void this.close(), { once: true, signal: this.closing.signal });
    this.running = this.run();
  }

  /** The revision the sink reflects: every range's events up to it were applied. */
  get revision(): number {
    return this.merge.revision;
  }

  /** Stops watching; leaves no stream or timer behind. Idempotent. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      this.closing.abort(abortedError("ranges"));
      this.endStream?.({ error: abortedError("ranges") });
      await this.running;
    })();
    return this.closed;
  }

  private async run(): Promise<void> {
    let resyncReason: string | undefined;
    while (!this.closing.signal.aborted) {
      try {
        if (resyncReason) {
          const fromRevision = this.merge.revision;
          const snapshot = await unlessAborted(this.options.snapshot(), this.closing.signal, () =>
            abortedError("ranges"),
          );
          this.replace(snapshot);
          const event = { reason: resyncReason, fromRevision, toRevision: snapshot.revision };
          this.logger.warn(event, "watch resynchronised from a fresh read");
          this.emit("resync", event);
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
        this.logger.warn({ err: error, revision: this.merge.revision }, "watch interrupted; retrying");
        this.emit("error", error as Error);
        await delay(this.backoff.next(), this.closing.signal).catch(() => undefined);
      }
    }
  }

  private replace(snapshot: { revision: number; kvs: IKeyValue[] }): void {
    this.merge = new RevisionMerge(this.ranges.length, snapshot.revision);
    this.options.sink.replaced(snapshot);
  }

  /** Opens one stream with a watch per range, from the merge's revision + 1; resolves when it can no longer be used. */
  private async watchUntilEnd(): Promise<StreamEnd> {
    // Require a leader: a member cut off from its quorum must end the watch, not keep it silent.
    const opening = this.client.watchClient.watch({ interceptors: [requireLeader] });
    opening.then(
      (stream) => {
        if (this.closing.signal.aborted) closeStream(stream);
      },
      () => undefined,
    );
    const stream = await unlessAborted(opening, this.closing.signal, () => abortedError("ranges"));
    return new Promise<StreamEnd>((resolve) => {
      let ended = false;
      const finish = (end: StreamEnd) => {
        if (ended) return;
        ended = true;
        if (this.endStream === finish) this.endStream = undefined;
        closeStream(stream);
        resolve(end);
      };
      stream.on("error", (error) => finish({ error }));
      stream.on("end", () => finish({ error: new Error("watch stream ended by etcd") }));
      if (this.closing.signal.aborted) return finish({ error: abortedError("ranges") });
      this.endStream = finish;
      const fragments = new FragmentJoiner();
      stream.on("data", (response: IWatchResponse) => {
        if (ended) return;
        const whole = fragments.join(response);
        if (!whole) return;
        const end = this.handle(whole);
        if (end) finish(end);
      });
      this.open(stream);
    });
  }

  /** One watch per range, each with its own id (index + 1), all from the same revision. */
  private open(stream: WatchStream): void {
    const from = this.merge.revision + 1;
    this.ranges.forEach((range, index) => {
      stream.write({
        create_request: {
          key: range.key,
          range_end: range.range_end,
          start_revision: from,
          watch_id: index + 1,
          // A response catching up on history may be larger than one message may be: etcd splits it.
          fragment: true,
          // No progress notifications: etcd before 3.4.25/3.5.8 can send one ahead of the events it covers.
        },
      });
    });
  }

  /** Applies one watch response; returns why the stream must end, if it must. */
  private handle(response: IWatchResponse): StreamEnd | undefined {
    const compactRevision = Number(response.compact_revision);
    const revision = this.merge.revision;
    if (compactRevision > 0) {
      this.logger.warn({ revision, compactRevision }, "watch history compacted; reading again");
      return { resync: `revision ${revision + 1} compacted (at ${compactRevision})` };
    }
    if (response.canceled) {
      return { error: new Error(`etcd canceled a watch: ${response.cancel_reason || "no reason given"}`) };
    }
    const index = Number(response.watch_id) - 1;
    if (!(index >= 0 && index < this.ranges.length)) {
      return { error: new Error(`a watch response for an unknown watch id ${response.watch_id}`) };
    }
    if (response.created) {
      this.backoff.reset();
      // A store behind our view is another history (restored or replaced cluster): only a fresh read is right.
      const headerRevision = Number(response.header.revision);
      if (headerRevision < revision)
        return { resync: `etcd revision ${headerRevision} is behind ${revision}` };
      return undefined;
    }
    if (response.events.length === 0) return undefined;
    for (const batch of this.merge.deliver(index, this.batches(response.events), 0)) {
      this.options.sink.applied(batch.revision, batch.events);
    }
    return undefined;
  }

  /** A response's events by revision (a transaction's events arrive together), decoded. */
  private batches(events: readonly IEvent[]): RevisionBatch<E>[] {
    const batches: RevisionBatch<E>[] = [];
    for (const event of events) {
      const revision = Number(event.kv.mod_revision);
      let batch = batches.at(-1);
      if (batch?.revision !== revision) {
        batch = { revision, events: [] };
        batches.push(batch);
      }
      const decoded = this.options.decode(event);
      if (decoded !== undefined) batch.events.push(decoded);
    }
    return batches;
  }
}
