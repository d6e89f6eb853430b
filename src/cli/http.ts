/** The operations endpoint of a node: health, readiness, Prometheus metrics, status and (master) schedule. */
import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import { EschedulerError } from "../errors.js";
import type { Readiness } from "../readiness/index.js";
import { type Logger, silentLogger } from "../node/index.js";

export type { Readiness };

export interface HttpHandlers {
  /** `GET /readyz`: 200 "ready" (then any notes, one per line) when ready, else 503 with the reasons, one per line. */
  readiness(): Readiness | Promise<Readiness>;
  /** `GET /status`: a JSON document. */
  status(): unknown;
  /** `GET /metrics`. */
  metrics: Registry;
  /** `POST /schedule` (master only, an admin action): returns a JSON answer, or throws `HttpRefusal`. */
  schedule?(reason: string): unknown;
  /** The bearer token of admin actions (`--http-admin`); without it every state-changing request is refused. */
  adminToken?: string;
  /** The web console (master only): `GET /` and everything under `/console/`; false when it has no such route. */
  console?(request: IncomingMessage, response: ServerResponse, url: URL): Promise<boolean>;
}

/** A refusal with an HTTP status (e.g. 409 when this master is not the leader). */
export class HttpRefusal extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }
}

export interface HttpEndpoint {
  /** Base URL with the port actually bound (useful with port 0). */
  url: string;
  close(): Promise<void>;
}

/** Listens on `address` ("host:port", ":port", "[::1]:port"); throws ERR_CONFIG when it cannot. */
export async function serveHttp(
  address: string,
  handlers: HttpHandlers,
  logger: Logger = silentLogger,
): Promise<HttpEndpoint> {
  const { host, port } = parseHostPort(address);
  const server = createServer((request, response) => {
    route(request, response, handlers, logger).catch((error: unknown) => {
      logger.warn({ err: error, path: request.url }, "http handler failed");
      if (!response.headersSent) reply(response, 500, "text/plain", `${(error as Error).message ?? error}\n`);
      else response.destroy();
    });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", (error: NodeJS.ErrnoException) =>
      reject(
        new EschedulerError(
          "ERR_CONFIG",
          `cannot listen on --http ${JSON.stringify(address)}: ${error.code ?? error.message}`,
        ),
      ),
    );
    server.listen(port, host, () => resolve());
  });
  const bound = server.address() as AddressInfo;
  const shownHost = bound.family === "IPv6" ? `[${bound.address}]` : bound.address;
  const url = `http://${shownHost}:${bound.port}`;
  logger.info({ url }, "http endpoint listening");
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function route(
  request: IncomingMessage,
  response: ServerResponse,
  handlers: HttpHandlers,
  logger: Logger,
): Promise<void> {
  const url = new URL(request.url ?? "/", "http://localhost");
  const { pathname, searchParams } = url;
  if (
    (pathname === "/" || pathname.startsWith("/console/")) &&
    (await handlers.console?.(request, response, url))
  )
    return;
  const method = request.method ?? "GET";
  const allow = (methods: string[]): boolean => {
    if (methods.includes(method)) return true;
    response.setHeader("Allow", methods.join(", "));
    reply(response, 405, "text/plain", `use ${methods.join(" or ")}\n`);
    return false;
  };
  switch (pathname) {
    case "/healthz":
      if (allow(["GET", "HEAD"])) reply(response, 200, "text/plain", "ok\n");
      return;
    case "/readyz": {
      if (!allow(["GET", "HEAD"])) return;
      const { ready, reasons } = await handlers.readiness();
      // A ready node may still have notes (e.g. schedules paused): they follow "ready".
      const lines = ready ? ["ready", ...reasons] : reasons;
      reply(response, ready ? 200 : 503, "text/plain", `${lines.join("\n")}\n`);
      return;
    }
    case "/metrics":
      if (allow(["GET"])) {
        reply(response, 200, handlers.metrics.contentType, await handlers.metrics.metrics());
      }
      return;
    case "/status":
      if (allow(["GET"])) replyJson(response, 200, await handlers.status());
      return;
    case "/schedule": {
      if (!handlers.schedule) break;
      if (!allow(["POST"])) return;
      const refusal = adminRefusal(request, handlers.adminToken);
      if (refusal) {
        const from = request.socket.remoteAddress;
        logger.warn(
          { path: pathname, from, status: refusal.statusCode, reason: refusal.message },
          "admin request refused",
        );
        replyRefusal(response, refusal);
        return;
      }
      try {
        const answer = await handlers.schedule(searchParams.get("reason") ?? "http request");
        replyJson(response, 200, answer ?? { requested: true });
      } catch (error) {
        if (!(error instanceof HttpRefusal)) throw error;
        replyRefusal(response, error);
      }
      return;
    }
  }
  reply(
    response,
    404,
    "text/plain",
    "not found: try /healthz, /readyz, /metrics or /status (a master's web console is at /)\n",
  );
}

/**
 * Why a state-changing request (`POST /schedule`, the console's actions) is refused, or undefined:
 * admin actions must be on (403), the bearer token must match (401), and the body must be declared
 * JSON (415). Both headers make it a non-simple request, which no cross-site form or script can
 * send without a CORS preflight that this server never grants.
 */
export function adminRefusal(request: IncomingMessage, token: string | undefined): HttpRefusal | undefined {
  if (token === undefined)
    return new HttpRefusal(403, "admin actions are off: start the master with --http-admin");
  if (!bearerMatches(request.headers.authorization, token)) {
    return new HttpRefusal(401, "a valid bearer token (ESCHEDULER_ADMIN_TOKEN) is required");
  }
  const type = request.headers["content-type"]?.split(";")[0].trim().toLowerCase();
  if (type !== "application/json") return new HttpRefusal(415, "send Content-Type: application/json");
  return undefined;
}

/** Compares digests so the time taken says nothing about the token. */
function bearerMatches(header: string | undefined, token: string): boolean {
  const presented = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "")?.[1];
  if (presented === undefined) return false;
  const digest = (value: string) => createHash("sha256").update(value).digest();
  return timingSafeEqual(digest(presented), digest(token));
}

/** Answers a refusal as `{error}` JSON, with the challenge a 401 calls for. */
export function replyRefusal(response: ServerResponse, refusal: HttpRefusal): void {
  if (refusal.statusCode === 401) response.setHeader("WWW-Authenticate", 'Bearer realm="escheduler"');
  replyJson(response, refusal.statusCode, { error: refusal.message });
}

export function reply(response: ServerResponse, status: number, contentType: string, body: string): void {
  response.writeHead(status, { "Content-Type": contentType, "Cache-Control": "no-store" });
  response.end(body);
}

export function replyJson(response: ServerResponse, status: number, value: unknown): void {
  reply(response, status, "application/json", `${JSON.stringify(value, null, 2)}\n`);
}

/** Splits "host:port" (host optional, IPv6 in brackets); an empty host means every interface. */
export function parseHostPort(address: string): { host?: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(address);
  const port = Number(match?.[3]);
  if (!match || port > 65_535) {
    throw new EschedulerError("ERR_CONFIG", `invalid --http ${JSON.stringify(address)}: must be host:port`);
  }
  return { host: match[1] ?? (match[2] || undefined), port };
}
