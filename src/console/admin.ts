/** The console's operator actions (--http-admin): which token guards them and what each one does. */
import { usageError } from "../cli/errors.js";
import type { AdminAction, AdminRequest, ConsoleAdmin } from "./routes.js";

export const ADMIN_TOKEN_VARIABLE = "ESCHEDULER_ADMIN_TOKEN";

export type AdminRunner = (action: AdminAction, request: AdminRequest) => Promise<unknown>;

/**
 * The console's admin side, or undefined when `--http-admin` is off. With it on, the token must be
 * set: an admin console nobody can authenticate to is a mistake worth one line and exit 2.
 */
export function consoleAdmin(
  options: { httpAdmin: boolean; http?: string },
  run: AdminRunner,
  env: NodeJS.ProcessEnv = process.env,
): ConsoleAdmin | undefined {
  if (!options.httpAdmin) return undefined;
  if (!options.http) throw usageError("--http-admin needs --http <host:port> to serve the console on");
  const token = env[ADMIN_TOKEN_VARIABLE]?.trim();
  if (!token) throw usageError(`--http-admin needs the bearer token in ${ADMIN_TOKEN_VARIABLE}`);
  return { token, run };
}
