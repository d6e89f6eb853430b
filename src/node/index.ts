export { DEFAULTS } from "./defaults.js";
export {
  nodeClient,
  createEtcdClient,
  type EtcdConnectionConfig,
  ensureReachable,
  isEtcdBusy,
} from "./client.js";
export {
  assertValidName,
  type DoubleBarrierKeys,
  doubleBarrierKeys,
  KeyLayout,
  keyLayout,
  nameProblem,
  prefixRangeEnd,
  type TaskKeyParts,
} from "./keys.js";
export { REQUEST_TIMEOUT_MS, requestDeadline, requireLeader } from "./requests.js";
export { LeaseSession, type LeaseSessionOptions, leaseMarginMs, revokeQuietly } from "./lease-session.js";
export { createLogger, type Logger, silentLogger } from "./logger.js";
export { importDefaultExport } from "./module-loader.js";
export { defaultNodeName } from "./name.js";
export { prefixRange, readPrefixPaged, readRangesPaged } from "./paged-read.js";
export {
  type CordonRecord,
  type DrainingMark,
  type HistoryMove,
  type HistoryRecord,
  type PausedRecord,
  type PlanRecord,
  parseRecord,
  type ScheduleOutcome,
  type ScheduleRequestRecord,
  type Task,
  type TaskState,
  type TaskStatus,
} from "./records.js";
export {
  type RegistrationOptions,
  registerWhenAdmitted,
  registerWorker,
  type WorkerInfo,
} from "./registration.js";
