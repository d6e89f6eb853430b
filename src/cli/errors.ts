/** What an operator sees when a command fails: one line on stderr and an exit code. */
import { EschedulerError, isEschedulerError } from "../errors.js";

export const EXIT_OK = 0;
/** A command ran and failed (or, for `probe`, the answer is "not ready"). */
export const EXIT_FAILURE = 1;
/** The user can fix it: bad flag or value, unloadable module, unreachable etcd, bad TLS files or credentials, duplicate name. */
export const EXIT_USAGE = 2;

/** Error codes that mean "fix your invocation or environment", not "escheduler broke" (a taken name is a duplicate --name). */
const USER_ERROR_CODES = new Set([
  "ERR_CONFIG",
  "ERR_BAD_NAME",
  "ERR_MODULE",
  "ERR_ETCD_UNREACHABLE",
  "ERR_NAME_TAKEN",
  "ERR_UNKNOWN_WORKER",
  "ERR_NO_LEADER",
]);

/** A usage error raised by the CLI itself (reported like ERR_CONFIG). */
export function usageError(message: string): EschedulerError {
  return new EschedulerError("ERR_CONFIG", message);
}

/** The exit code that `error` deserves. */
export function exitCodeFor(error: unknown): number {
  if (isEschedulerError(error) && USER_ERROR_CODES.has(error.code)) return EXIT_USAGE;
  if (etcdErrorClass(error) !== undefined) return EXIT_USAGE;
  return EXIT_FAILURE;
}

/** The error as a single line: its message up to the first line break, with etcd auth errors explained. */
export function oneLine(error: unknown): string {
  const etcdError = etcdErrorClass(error);
  if (etcdError === "EtcdAuthenticationFailedError") {
    return "etcd rejected the credentials: check --etcd-user and --etcd-password (ESCHEDULER_ETCD_PASSWORD)";
  }
  if (etcdError === "EtcdPermissionDeniedError") {
    return `etcd denied access: the --etcd-user needs read/write on the --root prefix (${firstLine((error as Error).message)})`;
  }
  const message = error instanceof Error ? error.message : String(error);
  return firstLine(message) || (error instanceof Error ? error.name : "unknown error");
}

/** Writes the one-line report (and the stack when debugging) to stderr; returns the exit code. */
export function reportError(
  error: unknown,
  options: { debug?: boolean; write?: (text: string) => void } = {},
): number {
  const write = options.write ?? ((text: string) => process.stderr.write(text));
  write(`escheduler: ${oneLine(error)}\n`);
  if (options.debug && error instanceof Error && error.stack) write(`${error.stack}\n`);
  return exitCodeFor(error);
}

/**
 * The etcd3 class of a credentials error, by name: importing etcd3 here would load gRPC and its
 * protobufs (~200 ms) even for `--help` and flag errors.
 */
function etcdErrorClass(
  error: unknown,
): "EtcdAuthenticationFailedError" | "EtcdPermissionDeniedError" | undefined {
  const name = error instanceof Error ? error.constructor.name : undefined;
  return name === "EtcdAuthenticationFailedError" || name === "EtcdPermissionDeniedError" ? name : undefined;
}

function firstLine(text: string): string {
  // gRPC appends an empty "Resolution note:" to connection errors.
  return text
    .split("\n", 1)[0]
    .replace(/\s*Resolution note:\s*$/, "")
    .trim();
}
