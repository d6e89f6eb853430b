/** The console's HTTP routes: the page, its event stream, search, and (with --http-admin) operator actions. */
import type { IncomingMessage, ServerResponse } from "node:http";
import { EXIT_USAGE, exitCodeFor, oneLine } from "../cli/errors.js";
import { adminRefusal, reply, replyJson, replyRefusal } from "../cli/http.js";
import { firstLine } from "../errors.js";
import type { Logger } from "../node/index.js";
import { loadAssets } from "./assets.js";
import type { ConsoleFeed } from "./feed.js";

export const ADMIN_ACTIONS = [
  "drain",
  "cordon",
  "uncordon",
  "pause",
  "resume",
  "schedule",
  "restart",
  "move",
  "pin",
  "unpin",
  "reset",
  "release",
] as const;
export type AdminAction = (typeof ADMIN_ACTIONS)[number];

/** The JSON body of `POST /console/actions/<action>`. */
export interface AdminRequest {
  /** The worker (cordon, drain, uncordon, release) or the target (move, pin). */
  worker?: string;
  /** The task of restart, move, pin, unpin and reset. */
  task?: string;
  reason?: string;
  allowRemoval?: boolean;
}

export interface ConsoleAdmin {
  /** The bearer token every action must carry (ESCHEDULER_ADMIN_TOKEN). */
  token: string;
  /** Carries out an action; resolves with a JSON answer, throws on refusal. */
  run(action: AdminAction, request: AdminRequest): Promise<unknown>;
}

const MAX_BODY_BYTES = 16 * 1024;

/** A handler for `HttpHandlers.console`. Without `admin`, every action is refused (read-only console). */
export function consoleRoutes(feed: ConsoleFeed, logger: Logger, admin?: ConsoleAdmin) {
  const assets = loadAssets();
  return async (request: IncomingMessage, response: ServerResponse, url: URL): Promise<boolean> => {
    const method = request.method ?? "GET";
    const asset = assets.get(url.pathname);
    if (asset && (method === "GET" || method === "HEAD")) {
      reply(response, 200, asset.contentType, asset.body);
      return true;
    }
    if (method === "GET") {
      switch (url.pathname) {
        case "/console/events":
          feed.subscribe(response);
          return true;
        case "/console/snapshot":
          replyJson(response, 200, await feed.snapshot());
          return true;
        case "/console/search": {
          const query = url.searchParams.get("q")?.trim() ?? "";
          if (query === "") replyJson(response, 400, { error: "give a task id (or part of one) as ?q=" });
          else replyJson(response, 200, await feed.search(query));
          return true;
        }
      }
    }
    const action = /^\/console\/actions\/([a-z]+)$/.exec(url.pathname)?.[1];
    if (action === undefined) return false;
    if (method !== "POST") {
      response.setHeader("Allow", "POST");
      replyJson(response, 405, { error: "use POST" });
      return true;
    }
    await runAction(request, response, action, logger, admin);
    return true;
  };
}

async function runAction(
  request: IncomingMessage,
  response: ServerResponse,
  action: string,
  logger: Logger,
  admin: ConsoleAdmin | undefined,
): Promise<void> {
  const from = request.socket.remoteAddress;
  const refusal = adminRefusal(request, admin?.token);
  if (refusal || !admin) {
    logger.warn(
      { action, from, status: refusal?.statusCode, reason: refusal?.message },
      "console action refused",
    );
    if (refusal) replyRefusal(response, refusal);
    return;
  }
  if (!(ADMIN_ACTIONS as readonly string[]).includes(action)) {
    replyJson(response, 404, { error: `unknown action ${action}: use ${ADMIN_ACTIONS.join(", ")}` });
    return;
  }
  let body: AdminRequest;
  try {
    body = await readJsonBody(request);
  } catch (error) {
    replyJson(response, 400, { error: firstLine(error) });
    return;
  }
  logger.info({ action, from, worker: body.worker, task: body.task, reason: body.reason }, "console action");
  try {
    replyJson(response, 200, (await admin.run(action as AdminAction, body)) ?? { done: true });
  } catch (error) {
    // What the CLI answers with exit 2 (an unknown worker, a bad name) is the caller's to fix.
    logger.warn({ action, err: error }, "console action failed");
    replyJson(response, exitCodeFor(error) === EXIT_USAGE ? 400 : 500, { error: oneLine(error) });
  }
}

async function readJsonBody(request: IncomingMessage): Promise<AdminRequest> {
  let text = "";
  for await (const chunk of request) {
    text += chunk;
    if (text.length > MAX_BODY_BYTES) throw new Error(`request body over ${MAX_BODY_BYTES} bytes`);
  }
  if (text.trim() === "") return {};
  const value: unknown = JSON.parse(text);
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new Error("the request body must be a JSON object");
  const { worker, task, reason, allowRemoval } = value as Record<string, unknown>;
  if (worker !== undefined && typeof worker !== "string") throw new Error("worker must be a string");
  if (task !== undefined && typeof task !== "string") throw new Error("task must be a string");
  if (reason !== undefined && typeof reason !== "string") throw new Error("reason must be a string");
  return { worker, task, reason, allowRemoval: allowRemoval === true };
}
