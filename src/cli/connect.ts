/** Opening etcd for a command: a client from the flags, proven reachable before the command starts. */
import type { Etcd3 } from "etcd3";
import { EschedulerError } from "../errors.js";
import {
  createEtcdClient,
  type EtcdConnectionConfig,
  ensureReachable,
  keyLayout,
  type Logger,
  waitForEtcd,
} from "../node/index.js";

/**
 * A client that answered a read under the root within `--dial-timeout` (a user allowed only the root's
 * prefix may read nothing else); throws ERR_ETCD_UNREACHABLE (exit 2) otherwise.
 */
export async function connectEtcd(config: EtcdConnectionConfig & { root: string }): Promise<Etcd3> {
  const client = createEtcdClient(config);
  try {
    await ensureReachable(client, config.etcd, config.dialTimeout, keyLayout(config.root).plan);
    return client;
  } catch (error) {
    client.close();
    throw withTlsHint(error, config);
  }
}

/**
 * A master's or worker's client: like `connectEtcd`, except that it waits, however long, while etcd
 * answers but cannot serve (no leader yet), logging why; it gives up (ERR_ETCD_UNREACHABLE, exit 2)
 * only when nothing answers for `--dial-timeout`, or at once on credentials, permissions or TLS refused.
 */
export async function connectNodeEtcd(
  config: EtcdConnectionConfig & { root: string },
  logger: Logger,
): Promise<Etcd3> {
  const client = createEtcdClient(config);
  try {
    const key = keyLayout(config.root).plan;
    await waitForEtcd(client, { config, key, logger });
    return client;
  } catch (error) {
    client.close();
    throw withTlsHint(error, config);
  }
}

/**
 * With TLS on, a failed connection is most often TLS itself (a plain etcd resets the handshake, or the
 * CA does not match), whatever gRPC happened to report: say so, once, in the one-line error.
 */
function withTlsHint(
  error: unknown,
  config: Pick<EtcdConnectionConfig, "etcdCa" | "etcdCert" | "etcdKey">,
): unknown {
  const tls = Boolean(config.etcdCa || config.etcdCert || config.etcdKey);
  if (!tls || !(error instanceof EschedulerError) || error.code !== "ERR_ETCD_UNREACHABLE") return error;
  // Only a connection that never worked: a refusal by etcd itself (credentials, permissions) is not TLS.
  if (
    /TLS|SSL|certificate/i.test(error.message) ||
    !/UNAVAILABLE|ECONNRESET|DEADLINE|no answer/i.test(error.message)
  )
    return error;
  return new EschedulerError(
    "ERR_ETCD_UNREACHABLE",
    `${error.message} (TLS is on through --etcd-ca/--etcd-cert: does etcd serve TLS with a certificate that CA signed?)`,
    { cause: error.cause },
  );
}

/** Resolves like `work`, or throws ERR_ETCD_UNREACHABLE once `timeoutMs` passed without an answer. */
export async function withinDialTimeout<T>(
  work: Promise<T>,
  config: Pick<EtcdConnectionConfig, "etcd" | "dialTimeout" | "etcdCa" | "etcdCert" | "etcdKey">,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new EschedulerError(
            "ERR_ETCD_UNREACHABLE",
            `cannot use etcd at ${config.etcd.join(",")}: no answer within ${config.dialTimeout}ms`,
          ),
        ),
      config.dialTimeout,
    );
  });
  try {
    return await Promise.race([work, timeout]);
  } catch (error) {
    if (error instanceof EschedulerError) throw withTlsHint(error, config);
    // Any failure of the first read (refused, TLS, auth) means etcd cannot be used as configured.
    const reason = error instanceof Error ? error.message.split("\n")[0] : String(error);
    throw withTlsHint(
      new EschedulerError("ERR_ETCD_UNREACHABLE", `cannot use etcd at ${config.etcd.join(",")}: ${reason}`, {
        cause: error,
      }),
      config,
    );
  } finally {
    clearTimeout(timer);
  }
}
