export {
  type FreshReadSource,
  leaderRead,
  MasterView,
  readFresh,
  VIEW_FRESHNESS_TIMEOUT_MS,
  viewWatchRanges,
} from "./master-view.js";
export { type RangeEvent, RangeState, type ViewEvent, type ViewKv } from "./range-state.js";
