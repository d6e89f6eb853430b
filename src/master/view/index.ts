export {
  type FreshReadSource,
  leaderRead,
  MasterView,
  readFresh,
  VIEW_FRESHNESS_TIMEOUT_MS,
} from "./master-view.js";
export { type RangeEvent, RangeState, type ViewKv } from "./range-state.js";
