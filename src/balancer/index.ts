/**
 * The planner: a pure function from (online workers, generated tasks, current assignment) to the
 * target assignment and its diff. Modules: validate.ts (checks and indexes the input), keyed.ts
 * (key affinity: sticky bounded-load rendezvous hashing), least-load.ts (per-group balance of the tasks
 * without a key, around the keyed load), ceilings.ts (its min-move choice), weighted.ts (groups with
 * weights), plan.ts (admission by capacity, orchestration, diff).
 */
export { PlanInputError } from "./errors.js";
export { plan } from "./plan.js";
export { type MoveHistory, settleMoves } from "./settle.js";
export type { AssignmentInput, Plan, PlanInput, Task, WorkerSpec } from "./types.js";
