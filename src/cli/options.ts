/**
 * The flags every command shares. Each flag also reads an environment variable (`--stop-timeout` →
 * `ESCHEDULER_STOP_TIMEOUT`, shown in `--help`) and a `--config <file.json>` setting; a flag wins
 * over its variable, which wins over the file. Defaults live in the config schemas (config.ts).
 */
import { type Command, Option } from "commander";
import ms from "ms";
import { DEFAULTS } from "../node/defaults.js";
import { parseBooleanText, readConfigFile } from "./config.js";
import { usageError } from "./errors.js";

/** `--stop-timeout` → `ESCHEDULER_STOP_TIMEOUT`. */
export function environmentVariable(flag: string): string {
  return `ESCHEDULER_${flag.replace(/^--/, "").replace(/-/g, "_").toUpperCase()}`;
}

/** Variables of boolean settings, by option attribute; commander would take any value as "on". */
const booleanVariables = new WeakMap<Command, Map<string, string>>();

/**
 * Adds `--flag <value>` that its environment variable can also set. A boolean `--flag` also gets
 * `--no-flag`, and its variable must be true, false, 1 or 0 (read in `resolveOptions`).
 */
export function addSetting(command: Command, flags: string, description: string): Command {
  const long = flags.split(/[ ,]/).find((part) => part.startsWith("--")) ?? flags;
  const variable = environmentVariable(long);
  const option = new Option(flags, description);
  if (!option.isBoolean()) return command.addOption(option.env(variable));
  option.description = `${description} (env: ${variable}=true|false)`;
  const variables = booleanVariables.get(command) ?? new Map<string, string>();
  booleanVariables.set(command, variables.set(option.attributeName(), variable));
  return command
    .addOption(option)
    .addOption(new Option(long.replace(/^--/, "--no-"), `turn ${long} off (over ${variable})`));
}

/** Flags that reach etcd: every command that talks to it has them. */
export function addConnectionOptions(
  command: Command,
  dialTimeoutDefault = ms(DEFAULTS.dialTimeoutMs),
): Command {
  const settings: Array<[string, string]> = [
    ["--etcd <endpoints>", `etcd endpoints, comma-separated (default ${DEFAULTS.etcd})`],
    ["--root <name>", `key prefix shared by one cluster (default ${DEFAULTS.root})`],
    ["--etcd-ca <file>", "CA certificate (PEM) to verify etcd; switches to https"],
    ["--etcd-cert <file>", "client certificate (PEM) for etcd mutual TLS"],
    ["--etcd-key <file>", "client private key (PEM) for etcd mutual TLS"],
    ["--etcd-user <user>", "etcd user (role-based access control)"],
    ["--etcd-password <password>", "etcd password (prefer the environment variable)"],
    [
      "--dial-timeout <duration>",
      `give up when etcd does not answer within this long (default ${dialTimeoutDefault})`,
    ],
    [
      "--log-level <level>",
      `trace, debug, info, warn, error, fatal or silent (default ${DEFAULTS.logLevel})`,
    ],
  ];
  for (const [flags, description] of settings) addSetting(command, flags, description);
  return command.option(
    "--config <file.json>",
    'settings as a JSON object of flag names without dashes, e.g. {"etcd-ca": "/tls/ca.pem"}; flags and environment variables win',
  );
}

/** Flags of the long-running nodes (master and worker). */
export function addNodeOptions(command: Command): Command {
  const settings: Array<[string, string]> = [
    ["--name <name>", "this node's name, unique in the root (default <ip>-<pid>)"],
    [
      "--ttl <duration>",
      `lease time-to-live: how fast a crashed node disappears (default ${ms(DEFAULTS.ttlMs)})`,
    ],
    ["--workers <count>", "workers the first start gathers in the barrier (default 0: no gathering)"],
    ["--http <host:port>", "serve /healthz, /readyz, /metrics and /status here (e.g. :8080)"],
  ];
  addConnectionOptions(command);
  for (const [flags, description] of settings) addSetting(command, flags, description);
  return command;
}

/**
 * The command's options as one record: what flags and environment variables gave, over what its
 * `--config` file gives. Throws ERR_CONFIG for an unreadable file or a setting the command lacks.
 */
export function resolveOptions(command: Command): Record<string, unknown> {
  const given: Record<string, unknown> = { ...command.opts() };
  for (const [field, variable] of booleanVariables.get(command) ?? []) {
    const text = process.env[variable];
    if (given[field] !== undefined || text === undefined) continue;
    given[field] = parseBooleanText(text);
    if (given[field] === undefined)
      throw usageError(`invalid ${variable} ${JSON.stringify(text)}: use true, false, 1 or 0`);
  }
  if (typeof given.config !== "string") return given;
  const known = new Set(command.options.map((option) => option.attributeName()));
  const fromFile = readConfigFile(given.config, known);
  const merged: Record<string, unknown> = { ...fromFile };
  for (const [field, value] of Object.entries(given)) if (value !== undefined) merged[field] = value;
  return merged;
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
