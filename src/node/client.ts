import { readFileSync } from "node:fs";
import {
  ConsecutiveBreaker,
  circuitBreaker,
  ExponentialBackoff,
  handleWhen,
  isBrokenCircuitError,
  noop,
  retry,
} from "cockatiel";
import {
  Etcd3,
  GRPCDeadlineExceededError,
  GRPCResourceExhastedError,
  GRPCUnavailableError,
  type IOptions,
  isRecoverableError,
} from "etcd3";
import { DEFAULTS } from "./defaults.js";
import { EschedulerError, firstLine } from "../errors.js";
import { defaultCallOptions } from "./requests.js";
import { channelPerEndpoint } from "./shared-channel.js";

/** How to reach etcd: endpoints, TLS files (paths), credentials, and how long to wait for an answer. */
export interface EtcdConnectionConfig {
  etcd: string[];
  etcdCa?: string;
  etcdCert?: string;
  etcdKey?: string;
  etcdUser?: string;
  etcdPassword?: string;
  dialTimeout: number;
}

/**
 * gRPC keepalive within etcd's server defaults: etcd (`--grpc-keepalive-min-time`, 5 s, and no pings
 * without an open stream) answers faster pings with GOAWAY "too many pings", which drops every watch
 * and stream of the connection. A dead connection is still noticed within ~15 s; leases do not rely
 * on it (their watchdog reports loss by itself).
 */
const GRPC_KEEPALIVE = {
  "grpc.keepalive_time_ms": 10_000,
  "grpc.keepalive_timeout_ms": 5_000,
  "grpc.keepalive_permit_without_calls": 0,
};

/** A channel argument of the lease clients only (grpc-js passes unknown arguments through). */
const LEASE_CONNECTION = "escheduler.connection";

/** Lease connection of each client made by `createEtcdClient`, made on first use and closed with it. */
const leaseConnections = new WeakMap<Etcd3, () => Etcd3>();

/**
 * Creates an etcd client for the configured endpoints, TLS files and user; fails fast (ERR_CONFIG) on
 * unreadable files. Every unary request has a deadline and every watch requires a leader
 * (`defaultCallOptions`). No circuit breaker stands in front of a lone endpoint (etcd's "too many requests"
 * or a slow moment must not block every call of the process); with several endpoints a member that
 * keeps answering UNAVAILABLE is skipped for a moment. Failed calls are retried once after a pause.
 */
export function createEtcdClient(config: Partial<EtcdConnectionConfig> & { etcd: string[] }): Etcd3 {
  const options = clientOptions(config);
  // Each client its own channels (the lease client's stay apart from the data client's).
  const client = new Etcd3({ ...options, grpcOptions: sharingChannels(options) });
  let leases: Etcd3 | undefined;
  leaseConnections.set(client, () => {
    leases ??= new Etcd3({
      ...options,
      // Keep-alives are light and frequent; they get no retry beyond the lease session's own.
      faultHandling: { ...options.faultHandling, host: () => noop, global: noop },
      // grpc-js pools the connections of channels with identical arguments: a distinct argument keeps
      // keep-alives off the data connection (they never queue behind data), and the lease clients of one
      // process share one connection (library workers by the hundred need not open one each).
      grpcOptions: { ...sharingChannels(options), [LEASE_CONNECTION]: "lease" },
    });
    return leases;
  });
  const close = client.close.bind(client);
  client.close = () => {
    leases?.close();
    close();
  };
  return client;
}

/**
 * The etcd client a library `Master` or `Worker` runs on: the caller's `client` (not closed by the
 * node), else a new one for `etcd` (default 127.0.0.1:2379, as the flags) that the node owns.
 * Both nodes fail the same way on an empty endpoint list: ERR_CONFIG, before anything starts.
 */
export function nodeClient(
  role: "master" | "worker",
  options: Partial<EtcdConnectionConfig> & { client?: Etcd3 },
): { client: Etcd3; owned: boolean } {
  if (options.client) return { client: options.client, owned: false };
  const etcd = options.etcd ?? [DEFAULTS.etcd];
  if (etcd.length === 0) throw new EschedulerError("ERR_CONFIG", `${role} needs an etcd client or endpoints`);
  return { client: createEtcdClient({ ...options, etcd }), owned: true };
}

/**
 * The client to keep leases alive through: a dedicated connection when `client` came from
 * `createEtcdClient`, otherwise `client` itself (a caller-made client is used as given).
 */
export function leaseConnection(client: Etcd3): Etcd3 {
  return leaseConnections.get(client)?.() ?? client;
}

/** `options`' gRPC options with a channel shared by the client's services (`channelPerEndpoint`). */
function sharingChannels(options: IOptions): IOptions["grpcOptions"] {
  return { ...options.grpcOptions, channelFactoryOverride: channelPerEndpoint() };
}

function clientOptions(config: Partial<EtcdConnectionConfig> & { etcd: string[] }): IOptions {
  const tls = Boolean(config.etcdCa || config.etcdCert || config.etcdKey);
  const several = config.etcd.length > 1;
  const options: IOptions = {
    hosts: config.etcd.map((host) =>
      /^https?:\/\//.test(host) ? host : `${tls ? "https" : "http"}://${host}`,
    ),
    dialTimeout: config.dialTimeout ?? 5_000,
    defaultCallOptions,
    faultHandling: {
      host: () =>
        several
          ? circuitBreaker(
              handleWhen((error) => error instanceof GRPCUnavailableError),
              { halfOpenAfter: 500, breaker: new ConsecutiveBreaker(5) },
            )
          : noop,
      global: retry(handleWhen(isRecoverableError), {
        maxAttempts: 1,
        backoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 1_000 }),
      }),
      watchBackoff: new ExponentialBackoff({ initialDelay: 50, maxDelay: 1_000 }).next(),
    },
    grpcOptions: {
      ...GRPC_KEEPALIVE,
      "grpc.max_receive_message_length": 64 * 1024 * 1024,
    },
  };
  if (tls) {
    if (!config.etcdCa)
      throw new EschedulerError("ERR_CONFIG", "--etcd-ca is required with --etcd-cert/--etcd-key");
    options.credentials = {
      rootCertificate: readTlsFile("--etcd-ca", config.etcdCa),
      certChain: config.etcdCert ? readTlsFile("--etcd-cert", config.etcdCert) : undefined,
      privateKey: config.etcdKey ? readTlsFile("--etcd-key", config.etcdKey) : undefined,
    };
  }
  if (config.etcdUser) {
    options.auth = { username: config.etcdUser, password: config.etcdPassword ?? "" };
  }
  return options;
}

/**
 * Resolves once etcd answers a read of `key`; throws ERR_ETCD_UNREACHABLE (with the last reason) after
 * `timeoutMs`. Transient errors (a leader election, a member unavailable or too slow) are retried with a
 * short backoff within `timeoutMs`; anything else (credentials, permissions, TLS) fails at once.
 * With several endpoints an attempt gets half the time left, so one slow member leaves time for another.
 * Pass a key under the root: a user allowed only that prefix is denied anything else.
 */
export async function ensureReachable(
  client: Etcd3,
  endpoints: string[],
  timeoutMs: number,
  key = "/escheduler-ping",
  attempt: (deadline: number) => Promise<unknown> = (deadline) =>
    client.get(key).options({ deadline }).exists(),
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let pause = 50; ; pause = Math.min(pause * 2, 500)) {
    const left = deadline - Date.now();
    try {
      await attempt(
        endpoints.length > 1 ? Date.now() + Math.max(Math.ceil(left / 2), Math.min(left, 1_000)) : deadline,
      );
      return;
    } catch (error) {
      // A transient error is tried again after a pause, if time is left after it; the last reason is reported.
      const transient = isTransientEtcdError(error);
      const wait = Math.min(pause, deadline - Date.now());
      if (transient && wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      if (!transient || deadline - Date.now() <= 0)
        throw etcdUnusable(endpoints, error, transient ? timeoutMs : undefined);
    }
  }
}

/**
 * ERR_ETCD_UNREACHABLE, saying whether etcd refused outright (credentials, permissions, TLS: no time
 * given) or failed every attempt for the whole `silentForMs` (the dial timeout), with the last reason.
 */
export function etcdUnusable(
  endpoints: readonly string[],
  error: unknown,
  silentForMs?: number,
): EschedulerError {
  const silent = silentForMs === undefined ? "" : `: no answer for ${silentForMs}ms (--dial-timeout)`;
  return new EschedulerError(
    "ERR_ETCD_UNREACHABLE",
    `cannot use etcd at ${endpoints.join(",")}${silent}: ${firstLine(error)}`,
    { cause: error },
  );
}

/**
 * etcd's own answers that a later attempt can cure, whatever gRPC code they came with (a server-side
 * deadline is UNKNOWN; a proposal raft dropped while leadership was moving is "UNKNOWN: raft proposal dropped").
 */
const ETCD_TRANSIENT_ANSWER =
  /etcdserver: (no leader|leader changed|not leader|request timed out|server stopped|too many requests)|context deadline exceeded|raft proposal dropped/;

/**
 * An error a retry can cure: etcd (or one member) unavailable, busy or slow, or every member skipped
 * for a moment after failing so (an open circuit breaker), but not TLS refused.
 */
export function isTransientEtcdError(error: unknown): boolean {
  if (isBrokenCircuitError(error) || ETCD_TRANSIENT_ANSWER.test(firstLine(error))) return true;
  if (!(
    error instanceof GRPCUnavailableError ||
    error instanceof GRPCDeadlineExceededError ||
    isEtcdBusy(error)
  ))
    return false;
  return !/TLS|SSL|certificate|handshake/i.test(error instanceof Error ? error.message : String(error));
}

function readTlsFile(flag: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new EschedulerError("ERR_CONFIG", `cannot read ${flag} ${JSON.stringify(path)}: ${reason}`);
  }
}

/**
 * Whether etcd pushed back rather than failed: "too many requests" (its apply loop lags its commits)
 * or a connection it closed under load. Such a write is safe to send again after a pause.
 */
export function isEtcdBusy(error: unknown): boolean {
  return (
    error instanceof GRPCResourceExhastedError ||
    (error instanceof Error && /too many requests/i.test(error.message))
  );
}
