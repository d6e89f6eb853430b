export {
  type AssignmentInput,
  type Plan,
  type PlanInput,
  PlanInputError,
  plan,
  type WorkerSpec,
} from "./balancer/index.js";
export * from "./barrier/index.js";
export * from "./errors.js";
export * from "./master/index.js";
// `Task` comes from the node layer; the planner's own Task type has the same shape.
export * from "./node/index.js";
export * from "./watcher/index.js";
export * from "./worker/index.js";
