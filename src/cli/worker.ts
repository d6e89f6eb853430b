/** `escheduler worker` (being wired). */
import { usageError } from "./errors.js";

export async function runWorker(_options: Record<string, unknown>): Promise<number> {
  throw usageError("`escheduler worker` is not available yet in this build");
}
