import { EschedulerError } from "../errors.js";

/** What a worker name, task id, root, group or request id may be: the names keys are built of. */

const MAX_NAME_LENGTH = 200;
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;

export type NameKind = "worker name" | "task id" | "root" | "task key" | "group" | "request id";

/** Why `value` is not a valid name, or undefined when it is. */
export function nameProblem(value: unknown): string | undefined {
  if (typeof value !== "string") return "must be a string";
  if (value.length === 0) return "must not be empty";
  if (value.length > MAX_NAME_LENGTH)
    return `must be at most ${MAX_NAME_LENGTH} characters (got ${value.length})`;
  if (value.includes("/")) return 'must not contain "/"';
  if (CONTROL_CHARACTERS.test(value)) return "must not contain control characters";
  return undefined;
}

/** Throws ERR_BAD_NAME naming the bad value unless `value` is 1–200 characters without `/` or control characters. */
export function assertValidName(kind: NameKind, value: unknown): asserts value is string {
  const problem = nameProblem(value);
  if (problem) {
    throw new EschedulerError("ERR_BAD_NAME", `invalid ${kind} ${JSON.stringify(value)}: ${problem}`);
  }
}
