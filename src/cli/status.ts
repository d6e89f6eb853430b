/** `escheduler status` (being wired). */
import { usageError } from "./errors.js";

export async function runStatus(_options: Record<string, unknown>): Promise<number> {
  throw usageError("`escheduler status` is not available yet in this build");
}
