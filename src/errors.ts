/** Stable error codes: the CLI maps them to one-line messages and exit codes. */
export type ErrorCode =
  | "ERR_CONFIG"
  | "ERR_BAD_NAME"
  | "ERR_BAD_TASK"
  | "ERR_BAD_PLAN_INPUT"
  | "ERR_WORKER_CAP"
  | "ERR_NAME_TAKEN"
  | "ERR_LEASE_LOST"
  | "ERR_REGISTRATION_LOST"
  | "ERR_NOT_ASSIGNED"
  | "ERR_RUN_LOCKED"
  | "ERR_BARRIER_TIMEOUT"
  | "ERR_GENERATOR"
  | "ERR_DEPOSED"
  | "ERR_MODULE"
  | "ERR_ETCD_UNREACHABLE"
  | "ERR_ABORTED"
  | "ERR_UNKNOWN_WORKER"
  | "ERR_NO_LEADER"
  | "ERR_REMOVAL_GUARD"
  | "ERR_PAUSED"
  | "ERR_VIEW_STALE";

/** Base of every error escheduler throws on purpose; `code` is stable across versions. */
export class EschedulerError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "EschedulerError";
    this.code = code;
  }
}

/** True for errors escheduler raised deliberately (the user can act on the message). */
export function isEschedulerError(error: unknown): error is EschedulerError {
  if (error instanceof EschedulerError) return true;
  const code = (error as { code?: unknown } | undefined)?.code;
  return error instanceof Error && typeof code === "string" && code.startsWith("ERR_");
}

/** The first line of an error's message (or of its string form): a reason that fits a one-line message. */
export function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split("\n")[0] ?? "";
}
