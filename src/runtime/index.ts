export { settlesWithin, unlessAborted, untilAborted } from "./abort.js";
export { type Backoff, delay, exponentialBackoff } from "./backoff.js";
export { isoNow } from "./clock.js";
export { type EventMap, type ListenerErrorLog, SafeEmitter } from "./emitter.js";
export { SerialJob } from "./serial-job.js";
