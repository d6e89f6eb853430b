/** The console's operator actions (--http-admin): which token guards them and what each one does. */
import type { Etcd3 } from "etcd3";
import { usageError } from "../cli/errors.js";
import {
  cordon,
  drain,
  moveTask,
  pause,
  pinTask,
  release,
  requestSchedule,
  resetTask,
  restartTask,
  resume,
  uncordon,
  unpinTask,
} from "../operator/index.js";
import type { AdminAction, AdminRequest, ConsoleAdmin } from "./routes.js";

export const ADMIN_TOKEN_VARIABLE = "ESCHEDULER_ADMIN_TOKEN";
/** Who the console's actions are recorded as (the token's label); default "console". */
export const ADMIN_TOKEN_LABEL_VARIABLE = "ESCHEDULER_ADMIN_TOKEN_LABEL";
/** How long "schedule" waits for the leader's answer before the page is told there is none. */
const SCHEDULE_TIMEOUT_MS = 15_000;

export type AdminRunner = (action: AdminAction, request: AdminRequest) => Promise<unknown>;

/**
 * The bearer token of admin actions, or undefined when `--http-admin` is off. With it on, the token
 * must be set: an admin surface nobody can authenticate to is a mistake worth one line and exit 2.
 */
export function adminToken(
  options: { httpAdmin: boolean; http?: string },
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  if (!options.httpAdmin) return undefined;
  if (!options.http) throw usageError("--http-admin needs --http <host:port> to serve the console on");
  const token = env[ADMIN_TOKEN_VARIABLE]?.trim();
  if (!token) throw usageError(`--http-admin needs the bearer token in ${ADMIN_TOKEN_VARIABLE}`);
  return token;
}

/** The console's admin side (see `adminToken`), or undefined when `--http-admin` is off. */
export function consoleAdmin(
  options: { httpAdmin: boolean; http?: string },
  run: AdminRunner,
  env: NodeJS.ProcessEnv = process.env,
): ConsoleAdmin | undefined {
  const token = adminToken(options, env);
  return token === undefined ? undefined : { token, run };
}

/** The label the console's actions are recorded as: `ESCHEDULER_ADMIN_TOKEN_LABEL`, default "console". */
export function adminLabel(env: NodeJS.ProcessEnv = process.env): string {
  return env[ADMIN_TOKEN_LABEL_VARIABLE]?.trim() || "console";
}

/**
 * The actions as the operator commands do them (src/operator): the console adds no logic of its own.
 * Each is recorded as done by `by` (the admin token's label).
 */
export function operatorActions(client: Etcd3, root: string, by: string = adminLabel()): AdminRunner {
  const worker = (request: AdminRequest): string => {
    if (!request.worker) throw usageError("this action needs a worker");
    return request.worker;
  };
  const task = (request: AdminRequest): string => {
    if (!request.task) throw usageError("this action needs a task");
    return request.task;
  };
  return async (action, request) => {
    const actor = { by, reason: request.reason };
    const timeoutMs = SCHEDULE_TIMEOUT_MS;
    switch (action) {
      case "cordon":
        return { cordoned: await cordon(client, root, worker(request), actor) };
      case "drain":
        return { draining: await drain(client, root, worker(request), actor) };
      case "uncordon":
        return { removed: (await uncordon(client, root, worker(request), actor)) ?? null };
      case "pause":
        return { paused: await pause(client, root, actor) };
      case "resume":
        return { resumed: await resume(client, root, actor) };
      case "schedule":
        return requestSchedule(client, root, { ...actor, allowRemoval: request.allowRemoval, timeoutMs });
      case "restart":
        return restartTask(client, root, task(request), { ...actor, timeoutMs });
      case "move":
        return moveTask(client, root, task(request), worker(request), { ...actor, timeoutMs });
      case "pin":
        return { pinned: await pinTask(client, root, task(request), worker(request), actor) };
      case "unpin":
        return { removed: (await unpinTask(client, root, task(request), actor)) ?? null };
      case "reset":
        return resetTask(client, root, task(request), actor);
      case "release":
        return release(client, root, worker(request), actor);
    }
  };
}
