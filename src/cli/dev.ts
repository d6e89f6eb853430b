/** `escheduler dev` (being wired). */
import { usageError } from "./errors.js";

export async function runDev(_options: Record<string, unknown>): Promise<number> {
  throw usageError("`escheduler dev` is not available yet in this build");
}
