import { readFileSync } from "node:fs";
import { ConsecutiveBreaker, circuitBreaker, ExponentialBackoff, handleWhen, retry } from "cockatiel";
import { Etcd3, type IOptions, isRecoverableError } from "etcd3";
import { EschedulerError, firstLine } from "../errors.js";
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

/** Creates an etcd client for the configured endpoints, TLS files and user; fails fast (ERR_CONFIG) on unreadable files. */
export function createEtcdClient(config: Partial<EtcdConnectionConfig> & { etcd: string[] }): Etcd3 {
  const tls = Boolean(config.etcdCa || config.etcdCert || config.etcdKey);
  const options: IOptions = {
    hosts: config.etcd.map((host) =>
      /^https?:\/\//.test(host) ? host : `${tls ? "https" : "http"}://${host}`,
    ),
    dialTimeout: config.dialTimeout ?? 5_000,
    faultHandling: {
      // Recover quickly after an etcd restart: the default breaker stays open for 5 s.
      host: () =>
        circuitBreaker(handleWhen(isRecoverableError), {
          halfOpenAfter: 500,
          breaker: new ConsecutiveBreaker(5),
        }),
      global: retry(handleWhen(isRecoverableError), { maxAttempts: 2 }),
      watchBackoff: new ExponentialBackoff({ initialDelay: 50, maxDelay: 1_000 }).next(),
    },
    grpcOptions: {
      // Detect a dead or black-holed connection in seconds, not minutes.
      "grpc.keepalive_time_ms": 2_000,
      "grpc.keepalive_timeout_ms": 2_000,
      "grpc.keepalive_permit_without_calls": 1,
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
  return new Etcd3(options);
}

/**
 * Resolves once etcd answers a read of `key`; throws ERR_ETCD_UNREACHABLE (with the reason) after `timeoutMs`.
 * Pass a key under the root: a user allowed only that prefix is denied anything else.
 */
export async function ensureReachable(
  client: Etcd3,
  endpoints: string[],
  timeoutMs: number,
  key = "/escheduler-ping",
): Promise<void> {
  try {
    await client
      .get(key)
      .options({ deadline: Date.now() + timeoutMs })
      .exists();
  } catch (error) {
    const reason = firstLine(error);
    throw new EschedulerError(
      "ERR_ETCD_UNREACHABLE",
      `cannot use etcd at ${endpoints.join(",")} (within ${timeoutMs}ms): ${reason}`,
      { cause: error },
    );
  }
}

function readTlsFile(flag: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new EschedulerError("ERR_CONFIG", `cannot read ${flag} ${JSON.stringify(path)}: ${reason}`);
  }
}
