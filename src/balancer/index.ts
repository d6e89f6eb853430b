/** The planner: pure functions from (workers, tasks, current assignment) to the target and its diff. */
export { PlanInputError } from "./errors.js";
export { plan } from "./plan.js";
export type { AssignmentInput, Plan, PlanInput, Task, WorkerSpec } from "./types.js";
