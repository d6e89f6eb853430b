export { ClusterState, clusterRanges } from "./cluster-state.js";
export { ClusterWatch } from "./cluster-watch.js";
export { RecordsTail } from "./records-tail.js";
