import type { Etcd3, IEvent } from "etcd3";
import { type Logger, silentLogger } from "../node/index.js";
import { SafeEmitter } from "../runtime/index.js";
import { type RevisionBatch, RevisionMerge } from "./revision-merge.js";
import { WatchDriver, type WatchedRange, type WatchResync, type WatchSnapshot } from "./watch-driver.js";

/** Gets each snapshot (first and resyncs), then each revision's decoded events in revision order. */
export interface RangesSink<E> {
  replaced(snapshot: WatchSnapshot): void;
  applied(revision: number, events: readonly E[]): void;
}

export interface RangesWatcherOptions<E> {
  /** What to keep of an event (undefined: nothing, only its revision counts): decoded as it arrives. */
  decode: (event: IEvent) => E | undefined;
  sink: RangesSink<E>;
  /** Reads, at one revision, every key the sink needs (at least those of `ranges`). */
  snapshot: () => Promise<WatchSnapshot>;
  logger?: Logger;
}

interface RangesWatcherEvents {
  resync: [WatchResync];
  error: [Error];
}

/**
 * A compaction-safe watch of several disjoint key ranges, one watch each on ONE stream, merged into one
 * revision order (`RevisionMerge`): the sink sees a snapshot at r0, then every event of the ranges
 * after r0 revision by revision, as a single watch of one range would show them. etcd sends nothing
 * of the keys between the ranges. A revision is applied once every range's watch has delivered past
 * it, so a range with no writes holds the others back until it gets one (its owner writes a mark).
 * Compaction, a lost history or a replaced cluster: a fresh snapshot and new watches from it (the
 * stream, its reconnects and its resyncs are a `WatchDriver`'s).
 */
export class RangesWatcher<E> extends SafeEmitter<RangesWatcherEvents> {
  private readonly logger: Logger;
  private readonly driver: WatchDriver;
  private merge: RevisionMerge<E>;

  constructor(
    client: Etcd3,
    ranges: readonly WatchedRange[],
    private readonly options: RangesWatcherOptions<E>,
  ) {
    super();
    this.merge = new RevisionMerge(ranges.length, 0);
    this.logger = (options.logger ?? silentLogger).child({
      watch: ranges.map((range) => `[${range.key}, ${range.range_end})`).join(" "),
    });
    this.listenerErrorLog = this.logger;
    this.driver = new WatchDriver(
      client,
      ranges,
      {
        revision: () => this.merge.revision,
        read: () => this.options.snapshot(),
        replace: (snapshot, resync) => {
          this.merge = new RevisionMerge(ranges.length, snapshot.revision);
          this.options.sink.replaced(snapshot);
          if (!resync) return;
          this.logger.warn(resync, "watch resynchronised from a fresh read");
          this.emit("resync", resync);
        },
        events: (range, events) => {
          for (const batch of this.merge.deliver(range, this.batches(events), 0)) {
            this.options.sink.applied(batch.revision, batch.events);
          }
        },
        interrupted: (error) => this.emit("error", error),
      },
      this.logger,
      { watch: "ranges", watcher: "RangesWatcher" },
    );
  }

  /** Reads the snapshot, then watches every range after its revision; rejects (and may be called again) when the read fails. */
  start(signal?: AbortSignal): Promise<void> {
    return this.driver.start(signal);
  }

  /** The revision the sink reflects: every range's events up to it were applied. */
  get revision(): number {
    return this.merge.revision;
  }

  /** Stops watching; leaves no stream or timer behind. Idempotent. */
  close(): Promise<void> {
    return this.driver.close();
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
