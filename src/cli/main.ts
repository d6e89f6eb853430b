/** The `escheduler` command line: parses flags, runs one command, and turns every failure into an exit code. */
import { basename } from "node:path";
import { Command, CommanderError } from "commander";
import { EXIT_OK, EXIT_USAGE, reportError } from "./errors.js";
import { addConnectionOptions, addNodeOptions, debugRequested } from "./options.js";
import { packageVersion } from "./version.js";

type Options = Record<string, unknown>;

/** Runs the command line `argv` (as in `process.argv`) and resolves with the exit code. */
export async function main(argv: readonly string[] = process.argv): Promise<number> {
  const args = argv.slice(2);
  const alias = invokedAs(argv[1]);
  if (alias) args.unshift(alias);
  // Dependencies' deprecation notices (e.g. gRPC's TLS to an IP address) would break one-line errors.
  if (!debugRequested(args)) process.noDeprecation = true;
  let exitCode = EXIT_OK;
  const run = (load: () => Promise<(options: Options) => Promise<number>>) => async (options: Options) => {
    const command = await load();
    exitCode = await command(options);
  };
  const program = buildProgram({
    master: run(async () => (await import("./master.js")).runMaster),
    worker: run(async () => (await import("./worker.js")).runWorker),
    status: run(async () => (await import("./status.js")).runStatus),
    probe: run(async () => (await import("./probe.js")).runProbe),
    dev: run(async () => (await import("./dev.js")).runDev),
  });
  try {
    await program.parseAsync(args, { from: "user" });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) return commanderExit(error);
    return reportError(error, { debug: debugRequested(args) });
  }
}

type Actions = Record<"master" | "worker" | "status" | "probe" | "dev", (options: Options) => Promise<void>>;

function buildProgram(actions: Actions): Command {
  const program = new Command("escheduler")
    .description("Places long-running tasks on a fleet of worker processes, coordinated through etcd.")
    .version(packageVersion(), "-V, --version")
    .showSuggestionAfterError(true)
    .exitOverride()
    // Commander's own errors (and the help it shows after them) become one line in commanderExit.
    .configureOutput({ outputError: () => {}, writeErr: () => {} })
    .addHelpText(
      "after",
      `
Environment: ESCHEDULER_ETCD, ESCHEDULER_ROOT, ESCHEDULER_ETCD_PASSWORD (flags win).
Exit codes: 0 done (probe: ready), 1 failed (probe: not ready), 2 bad usage, bad module,
etcd unreachable or credentials refused (probe: cannot tell).
Run "escheduler <command> --help" for a command's flags.
`,
    );

  addNodeOptions(
    program
      .command("master")
      .description("campaign for leadership; as leader, balance the generator's tasks over the workers")
      .requiredOption("--generator <module>", "module whose default export returns the tasks")
      .option("--interval <duration>", "schedule at least this often (default 60s)")
      .option(
        "--rebalance-wait <duration>",
        "debounce worker changes this long before scheduling (default 5s)",
      )
      .option("--timeout <duration>", "abort a generator call after this long (default 30s)")
      .option(
        "--barrier-timeout <duration>",
        "first start: wait this long for --workers to gather (default 5m)",
      )
      .option("--handoff <mode>", "wait (a moved task never runs twice) or immediate (default wait)"),
  ).action(actions.master);

  addNodeOptions(
    program
      .command("worker")
      .description("run the tasks the leader assigns to this node through a handler module")
      .requiredOption("--handler <module>", "module whose default export starts and stops tasks")
      .option("--capacity <n>", "most load units this worker takes (default unlimited)")
      .option("--stop-timeout <duration>", "give each task this long to stop (default 30s)"),
  ).action(actions.worker);

  addConnectionOptions(
    program
      .command("status")
      .description("show the leader, barrier, last plan, workers and tasks that are not running")
      .option("--json", "print JSON instead of a table"),
  ).action(actions.status);

  addConnectionOptions(
    program
      .command("probe")
      .description("exit 0 when ready, 1 when not (reasons on stdout), 2 when it cannot tell")
      .option("--worker <name>", "probe this worker's readiness instead of the cluster's"),
    "700ms",
  ).action(actions.probe);

  program
    .command("dev")
    .description(
      "a local demo cluster: throw-away etcd, a master, workers and the examples, with a live view",
    )
    .option("--workers <count>", "workers to start (default 3)")
    .option("--tasks <count>", "tasks the example generator produces (default 30)")
    .option("--for <duration>", "stop everything and exit 0 after this long (default: until Ctrl-C)")
    .option("--etcd <endpoints>", "use this etcd instead of starting one (env ETCD_ENDPOINTS)")
    .option(
      "--log-level <level>",
      "log level of the master and workers (their logs go to files; default info)",
    )
    .action(actions.dev);

  return program;
}

/** `escheduler-master` and `escheduler-worker` behave as `escheduler master|worker`. */
function invokedAs(script: string | undefined): "master" | "worker" | undefined {
  const name = basename(script ?? "").replace(/\.[cm]?js$/, "");
  if (name === "escheduler-master") return "master";
  if (name === "escheduler-worker") return "worker";
  return undefined;
}

/** Help and version exit 0; every other commander error is one line on stderr and exit 2. */
function commanderExit(error: CommanderError): number {
  if (error.code === "commander.helpDisplayed" || error.code === "commander.version") return EXIT_OK;
  if (error.code === "commander.help" && error.exitCode === 0) return EXIT_OK;
  if (error.code === "commander.help") {
    process.stderr.write("escheduler: missing command (master, worker, status, probe or dev); see --help\n");
    return EXIT_USAGE;
  }
  const message = error.message.replace(/^error: /, "").replace(/\s*\n\s*/g, " ");
  process.stderr.write(`escheduler: ${message}\n`);
  return EXIT_USAGE;
}
