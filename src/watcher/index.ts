export { ChangeQueue } from "./change-queue.js";
export {
  type PrefixSink,
  type PrefixSnapshot,
  PrefixWatcher,
  type PrefixWatcherOptions,
  type ResyncEvent,
  type WatchChange,
} from "./prefix-watcher.js";
export { type RangesSink, RangesWatcher, type RangesWatcherOptions } from "./ranges-watcher.js";
export { type RevisionBatch, RevisionMerge } from "./revision-merge.js";
export type { WatchedRange } from "./watch-driver.js";
export { type WatchRunner, WatchGroup } from "./watch-group.js";
