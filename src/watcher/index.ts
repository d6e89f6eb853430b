export { ChangeQueue } from "./change-queue.js";
export {
  type PrefixSink,
  type PrefixSnapshot,
  PrefixWatcher,
  type PrefixWatcherOptions,
  type ResyncEvent,
  type WatchChange,
} from "./prefix-watcher.js";
