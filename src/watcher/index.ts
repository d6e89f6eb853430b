export { PrefixWatcher, type ResyncEvent, type WatchChange } from "./prefix-watcher.js";
