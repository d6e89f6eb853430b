/** Operator actions at the etcd level, shared by the CLI commands and the web console's admin actions. */
export { type Cordons, cordon, cordonMode, drain, parseCordons, readCordons, uncordon } from "./cordon.js";
export { HISTORY_LIMIT, type HistoryEntry, type ReadHistoryOptions, readHistory } from "./history.js";
export { pause, readPaused, resume } from "./pause.js";
export { answerScheduleRequest, requestSchedule, type ScheduleRequestOptions } from "./request.js";
