/** The flags every command shares, and their mapping onto the validated config of src/node. */
import type { Command } from "commander";

/** Flags that reach etcd: every command that talks to it has them. */
export function addConnectionOptions(command: Command, dialTimeoutDefault = "5s"): Command {
  return command
    .option(
      "--etcd <endpoints>",
      "etcd endpoints, comma-separated (env ESCHEDULER_ETCD; default 127.0.0.1:2379)",
    )
    .option("--root <name>", "key prefix shared by one cluster (env ESCHEDULER_ROOT; default escheduler)")
    .option("--etcd-ca <file>", "CA certificate (PEM) to verify etcd; switches to https")
    .option("--etcd-cert <file>", "client certificate (PEM) for etcd mutual TLS")
    .option("--etcd-key <file>", "client private key (PEM) for etcd mutual TLS")
    .option("--etcd-user <user>", "etcd user (role-based access control)")
    .option("--etcd-password <password>", "etcd password (env ESCHEDULER_ETCD_PASSWORD)")
    .option(
      "--dial-timeout <duration>",
      `give up when etcd does not answer within this long (default ${dialTimeoutDefault})`,
    )
    .option("--log-level <level>", "trace, debug, info, warn, error, fatal or silent (default info)");
}

/** Flags of the long-running nodes (master and worker). */
export function addNodeOptions(command: Command): Command {
  return addConnectionOptions(command)
    .option("--name <name>", "this node's name, unique in the root (default <ip>-<pid>)")
    .option("--ttl <duration>", "lease time-to-live: how fast a crashed node disappears (default 10s)")
    .option("--workers <count>", "workers the first start gathers in the barrier (default 0: no gathering)")
    .option("--max-workers <count>", "most workers registered at once (default --workers; 0 for no cap)")
    .option("--http <host:port>", "serve /healthz, /readyz, /metrics and /status here (e.g. :8080)");
}

/** True when the raw arguments ask for debug (or trace) logs: stack traces are shown then. */
export function debugRequested(args: readonly string[]): boolean {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const value = arg === "--log-level" ? args[i + 1] : arg.startsWith("--log-level=") ? arg.slice(12) : "";
    if (value === "debug" || value === "trace") return true;
  }
  return false;
}
