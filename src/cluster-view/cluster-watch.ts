/**
 * The cluster picture kept in memory from ONE compaction-safe watch of the root (`PrefixWatcher`): one
 * read of `clusterRanges` at r0, then every event under the root in revision order, each applied to a
 * `ClusterState` in O(change). On compaction, a lost history or a replaced cluster the watcher reads
 * the ranges again and the state is replaced at once.
 *
 * Invariant: whenever the state is at revision r, it equals what `readStatus` reads at r (workers,
 * assignment, groups, statuses, leader, marker, plan, controls, the newest schedule), and its history
 * and audit tails equal `readHistory` and `readAudit` at r. It holds because the state starts from a
 * read of those ranges at one revision, applies each later revision's events whole and in order from a
 * single stream (no range runs ahead of another), and parses each record with readiness's own rules.
 */
import type { Etcd3 } from "etcd3";
import { type KeyLayout, type Logger, readRangesPaged } from "../node/index.js";
import { SafeEmitter } from "../runtime/index.js";
import { PrefixWatcher, type ResyncEvent } from "../watcher/index.js";
import { ClusterState, clusterRanges } from "./cluster-state.js";

interface ClusterWatchEvents {
  /** The state moved to this revision (a snapshot or one revision's events were applied). */
  changed: [number];
  resync: [ResyncEvent];
  /** The watch was interrupted; it retries by itself until closed. */
  error: [Error];
}

export class ClusterWatch extends SafeEmitter<ClusterWatchEvents> {
  readonly state: ClusterState;
  private readonly watcher: PrefixWatcher;
  /** Full reads of the ranges so far: the first, then one per resync. */
  reads = 0;

  constructor(client: Etcd3, keys: KeyLayout, logger: Logger) {
    super();
    this.listenerErrorLog = logger;
    this.state = new ClusterState(keys, logger);
    this.watcher = new PrefixWatcher(client, keys.prefix, {
      logger,
      // The watcher's own string view stays empty: the state holds what it needs, parsed.
      keep: () => false,
      snapshot: async () => {
        const read = await readRangesPaged(client, clusterRanges(keys));
        this.reads++;
        return { revision: read.revision, kvs: read.ranges.flat() };
      },
      sink: {
        replaced: (snapshot) => {
          this.state.replace(snapshot);
          this.emit("changed", this.state.revision);
        },
        applied: (revision, events) => {
          this.state.apply(revision, events);
          this.emit("changed", this.state.revision);
        },
      },
    });
    this.watcher.on("resync", (event) => this.emit("resync", event));
    this.watcher.on("error", (error) => this.emit("error", error));
  }

  /** Reads the ranges once and starts watching; rejects (and may be called again) when the read fails. */
  async start(signal?: AbortSignal): Promise<void> {
    await this.watcher.start(signal);
  }

  /** Stops the watch; leaves no stream or timer behind. Idempotent. */
  close(): Promise<void> {
    return this.watcher.close();
  }
}
