/**
 * escheduler as a library: the public surface, and everything on it is a semver promise. Internals
 * (fencing, campaigns, watchers, key layout, backoff helpers, config schemas) stay internal.
 */

// Running a master or a worker inside your own process.
export type {
  DeposedEvent,
  ElectedEvent,
  Generator,
  GeneratorContext,
  HandoffWaitEvent,
  MasterEvents,
  MasterOptions,
  MaxMoving,
  PausedEvent,
  ScheduleFailedEvent,
  ScheduleResult,
} from "./master/index.js";
export { Master } from "./master/index.js";
export type {
  RemovalReason,
  RetryOptions,
  RunHandler,
  StartStopHandler,
  TaskChange,
  TaskContext,
  TaskHandler,
  TaskRunState,
  TaskStateChange,
  WorkerEvents,
  WorkerOptions,
  WorkerStatus,
  WorkerTask,
} from "./worker/index.js";
export { Worker } from "./worker/index.js";

// The planner: pure, usable on its own.
export type { AssignmentInput, Plan, PlanInput, WorkerSpec } from "./balancer/index.js";
export { PlanInputError, plan } from "./balancer/index.js";

// Records and connections.
export type { EtcdConnectionConfig, Logger, Task, TaskState, TaskStatus } from "./node/index.js";
export { createEtcdClient, DEFAULTS } from "./node/index.js";

// Operator actions: what the `escheduler` operator commands and the web console's admin actions run.
export type {
  CordonRecord,
  HeldRecord,
  HistoryMove,
  HistoryRecord,
  PausedRecord,
  ScheduleOutcome,
} from "./node/index.js";
export type { HistoryEntry, ReadHistoryOptions, ScheduleRequestOptions } from "./operator/index.js";
export { cordon, drain, pause, readHistory, requestSchedule, resume, uncordon } from "./operator/index.js";
// A crashed worker's held tasks (`--reassign-delay`): end the wait now.
export { release, type ReleaseResult } from "./operator/index.js";

// Errors: `code` is stable.
export { type ErrorCode, EschedulerError, isEschedulerError } from "./errors.js";

// Readiness, metrics and the HTTP endpoint, so a node embedded in a service serves /readyz and /metrics too.
export type { ClusterView, Readiness } from "./readiness/index.js";
export { clusterReadiness, readClusterView, workerReadiness } from "./readiness/index.js";
export type { HttpEndpoint, HttpHandlers } from "./cli/http.js";
export { serveHttp } from "./cli/http.js";
export { createRegistry, observeMaster, observeWorker } from "./cli/metrics.js";
