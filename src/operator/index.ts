/** Operator actions at the etcd level, shared by the CLI commands and the web console's admin actions. */
export { type Controls, type Cordons, cordonMode } from "../master/controls.js";
export { cordon, drain, readControls, readCordons, uncordon } from "./cordon.js";
export { type DrainedResult, waitUntilDrained } from "./drained.js";
export { HISTORY_LIMIT } from "../master/history.js";
export {
  type HistoryEntry,
  newestHistoryRevision,
  type ReadHistoryOptions,
  readHistory,
  readNewestHistory,
} from "./history.js";
export { pause, readPaused, resume } from "./pause.js";
export { requestSchedule, type ScheduleRequestOptions } from "./request.js";
