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
export { release, type ReleaseResult } from "./release.js";
export { requestSchedule, type ScheduleRequestOptions } from "./request.js";
export {
  type ActorOptions,
  actorText,
  AUDIT_LIMIT,
  type AuditEntry,
  defaultActor,
  readAudit,
} from "./audit.js";
export { moveTask, pinTask, readPins, restartTask, type TaskActionOptions, unpinTask } from "./task.js";
export { requestTaskAction } from "./request.js";
export { resetTask, type TaskResetResult } from "./task-reset.js";
