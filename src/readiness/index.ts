export { type ClusterView, readClusterView, readLeader } from "./cluster-view.js";
export { clusterReadiness, type Readiness, shareReadiness, workerReadiness } from "./readiness.js";
export { isWorkerReady } from "./worker-ready.js";
