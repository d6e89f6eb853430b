/** `escheduler master` (being wired). */
import { usageError } from "./errors.js";

export async function runMaster(_options: Record<string, unknown>): Promise<number> {
  throw usageError("`escheduler master` is not available yet in this build");
}
