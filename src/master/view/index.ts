export {
  type FreshReadSource,
  leaderRead,
  MasterView,
  readFresh,
  VIEW_FRESHNESS_TIMEOUT_MS,
} from "./master-view.js";
export { type RangeEvent, RangeState } from "./range-state.js";
