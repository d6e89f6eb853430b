/**
 * The planner: a pure function from (online workers, generated tasks, current assignment) to the
 * target assignment and its diff. Modules: validate.ts (checks and indexes the input), keyed.ts
 * (key affinity: sticky bounded-load rendezvous hashing), least-load.ts (per-group balance of the tasks
 * without a key, around the keyed load), ceilings.ts (its min-move choice), weighted.ts (groups with
 * weights), plan.ts (admission by capacity, orchestration, diff).
 */
export { PlanInputError } from "./errors.js";
export { plan } from "./plan.js";
export { IdTable } from "./id-table.js";
export { eligibleOn } from "./cordon.js";
export { type MoveHistory, settleMoves } from "./settle.js";
export { generationProblem } from "./rollout.js";
export {
  labelKeyProblem,
  labelsProblem,
  labelValueProblem,
  matches,
  formatSelector,
  parseLabel,
  selectorProblem,
  spreadProblem,
  antiKeyProblem,
} from "./labels.js";
export { type EffectiveRestartPolicy, effectiveRestartPolicy, restartProblem, windowMs } from "./restart.js";
export {
  type AssignmentInput,
  type Labels,
  type Plan,
  type PlanInput,
  REASON_KINDS,
  type ReasonKind,
  type RestartPolicy,
  type Selector,
  type SelectorTerm,
  type Spread,
  type Task,
  type UnassignedReason,
  type WorkerSpec,
} from "./types.js";
