export { ChangeQueue } from "./change-queue.js";
export { PrefixWatcher, type ResyncEvent, type WatchChange } from "./prefix-watcher.js";
