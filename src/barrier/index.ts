export { type ClusterView, readClusterView, readLeader } from "./cluster-view.js";
export {
  type BarrierWaitOptions,
  DoubleBarrier,
  type DoubleBarrierOptions,
  gatheringBarrier,
} from "./double-barrier.js";
export { isBarrierLeft, markBarrierLeft } from "./marker.js";
export { clusterReadiness, type Readiness, shareReadiness, workerReadiness } from "./readiness.js";
