/** Opening etcd for a command: a client from the flags, proven reachable before the command starts. */
import type { Etcd3 } from "etcd3";
import { EschedulerError } from "../errors.js";
import { createEtcdClient, type EtcdConnectionConfig, ensureReachable, keyLayout } from "../node/index.js";

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
    throw error;
  }
}

/** Resolves like `work`, or throws ERR_ETCD_UNREACHABLE once `timeoutMs` passed without an answer. */
export async function withinDialTimeout<T>(
  work: Promise<T>,
  config: Pick<EtcdConnectionConfig, "etcd" | "dialTimeout">,
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
    if (error instanceof EschedulerError) throw error;
    // Any failure of the first read (refused, TLS, auth) means etcd cannot be used as configured.
    const reason = error instanceof Error ? error.message.split("\n")[0] : String(error);
    throw new EschedulerError(
      "ERR_ETCD_UNREACHABLE",
      `cannot use etcd at ${config.etcd.join(",")}: ${reason}`,
      {
        cause: error,
      },
    );
  } finally {
    clearTimeout(timer);
  }
}
