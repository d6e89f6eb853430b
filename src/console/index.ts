/** The live web console served at `GET /` of the master's --http. */
import type { Etcd3 } from "etcd3";
import type { HttpHandlers } from "../cli/http.js";
import type { Logger } from "../node/index.js";
import { ConsoleFeed } from "./feed.js";
import { type ConsoleAdmin, consoleRoutes } from "./routes.js";

export { ADMIN_TOKEN_VARIABLE, adminToken, consoleAdmin, operatorActions } from "./admin.js";
export { ADMIN_ACTIONS, type AdminAction, type AdminRequest, type ConsoleAdmin } from "./routes.js";

export interface WebConsole {
  /** For `HttpHandlers.console`. */
  routes: NonNullable<HttpHandlers["console"]>;
  /** Ends the event streams and closes the watch. */
  stop(): void;
}

/** A console over `root`; read-only unless `admin` is given (--http-admin with its token). */
export function createConsole(options: {
  client: Etcd3;
  root: string;
  logger: Logger;
  admin?: ConsoleAdmin;
}): WebConsole {
  const logger = options.logger.child({ component: "console" });
  const feed = new ConsoleFeed({ ...options, logger, admin: options.admin !== undefined });
  return { routes: consoleRoutes(feed, logger, options.admin), stop: () => feed.stop() };
}
