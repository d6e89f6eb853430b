/** `escheduler probe` (being wired). */
import { usageError } from "./errors.js";

export async function runProbe(_options: Record<string, unknown>): Promise<number> {
  throw usageError("`escheduler probe` is not available yet in this build");
}
