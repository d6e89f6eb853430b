export {
  barrierLeftOf,
  type ClusterView,
  type LeasedKv,
  leaderRanges,
  oldestLeased,
  planOf,
  readClusterView,
  readLeader,
  statusOf,
  workerOf,
} from "./cluster-view.js";
export { clusterReadiness, type Readiness, shareReadiness, workerReadiness } from "./readiness.js";
export { isWorkerReady, WorkerReadyCheck } from "./worker-ready.js";
