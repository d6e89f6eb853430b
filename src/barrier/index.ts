export {
  type BarrierWaitOptions,
  DoubleBarrier,
  type DoubleBarrierOptions,
  gatheringBarrier,
} from "./double-barrier.js";
export { isBarrierLeft, markBarrierLeft } from "./marker.js";
