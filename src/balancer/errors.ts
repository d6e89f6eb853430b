/** Thrown by `plan()` for input it cannot plan; `culprit` is the offending id, name or field. */
export class PlanInputError extends Error {
  readonly code = "ERR_BAD_PLAN_INPUT";
  readonly culprit: string;

  constructor(culprit: string, problem: string) {
    super(`bad plan input ${culprit}: ${problem}`);
    this.name = "PlanInputError";
    this.culprit = culprit;
  }
}
