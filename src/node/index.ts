export { DEFAULTS } from "./defaults.js";
export {
  nodeClient,
  createEtcdClient,
  type EtcdConnectionConfig,
  ensureReachable,
  isEtcdBusy,
  isTransientEtcdError,
} from "./client.js";
export { EtcdWaitLog, isPermanentEtcdError, isRetryableAtStartup, waitForEtcd } from "./etcd-wait.js";
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
export { leaseField, REQUEST_TIMEOUT_MS, requestDeadline, requireLeader } from "./requests.js";
export { LeaseSession, type LeaseSessionOptions, leaseMarginMs, revokeQuietly } from "./lease-session.js";
export { colorWanted, createLogger, type Logger, nodeLogger, silentLogger, stderrLogger } from "./logger.js";
export { importDefaultExport } from "./module-loader.js";
export { defaultNodeName } from "./name.js";
export {
  MAX_TXN_BYTES,
  MAX_TXN_OPS,
  prefixRange,
  readNamedKeys,
  readPrefixPaged,
  readRangesPaged,
} from "./paged-read.js";
export {
  barrierLeftSchema,
  type CordonRecord,
  cordonRecordSchema,
  type DrainingMark,
  drainingMarkSchema,
  type FailureRecord,
  failureRecordSchema,
  hasLease,
  type HeldRecord,
  heldRecordSchema,
  type HistoryMove,
  type HistoryRecord,
  historyRecordSchema,
  keyText,
  type BegunMove,
  moveRecordSchema,
  type PausedRecord,
  pausedRecordSchema,
  type PlanRecord,
  type UnassignedTask,
  planRecordSchema,
  parseRecord,
  readRecord,
  type ReadRecordOptions,
  leftMarkSchema,
  repairCordonRecord,
  repairHeldRecord,
  repairPausedRecord,
  type ScheduleOutcome,
  scheduleOutcomeSchema,
  type ScheduleRequestRecord,
  scheduleRequestRecordSchema,
  type Task,
  taskGroupSchema,
  type TaskState,
  type TaskStatus,
  taskStatusSchema,
  type WorkerFailure,
  workerInfoSchema,
} from "./records.js";
export {
  actorFields,
  AUDIT_ACTIONS,
  type AuditRecord,
  auditRecordSchema,
  type PinRecord,
  pinRecordSchema,
  type TaskAction,
  taskActionSchema,
} from "./operator-records.js";
export { NameHolderCheck } from "./name-holder.js";
export {
  NameTakenError,
  type RegistrationOptions,
  registerWhenAdmitted,
  registerWorker,
  type WorkerInfo,
} from "./registration.js";
