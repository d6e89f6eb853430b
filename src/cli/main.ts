/** The `escheduler` command line: parses flags, runs one command, and turns every failure into an exit code. */
import { addEscalationOptions } from "./escalation-options.js";
import { labelOption } from "./labels.js";
import { basename } from "node:path";
import { Command, CommanderError } from "commander";
import ms from "ms";
import { DEFAULTS } from "../node/defaults.js";
import { EXIT_OK, EXIT_USAGE, reportError } from "./errors.js";
import {
  addConnectionOptions,
  addNodeOptions,
  addSetting,
  debugRequested,
  resolveOptions,
} from "./options.js";
import { addOperatorCommands } from "./operator-commands.js";
import { addTaskCommands } from "./task-commands.js";
import { addTaskResetCommand } from "./task-reset-command.js";
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
  // Commander calls an action with the positional arguments, the options, then the command itself.
  const run =
    (load: () => Promise<(options: Options, ...positional: string[]) => Promise<number>>) =>
    async (...args: unknown[]) => {
      const command = args.at(-1) as Command;
      const positional = args.slice(0, -2) as string[];
      const action = await load();
      exitCode = await action(resolveOptions(command), ...positional);
    };
  const program = buildProgram(run, {
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

type Runner = Parameters<typeof addOperatorCommands>[1];
type Actions = Record<
  "master" | "worker" | "status" | "probe" | "dev",
  (...args: unknown[]) => Promise<void>
>;

function buildProgram(run: Runner, actions: Actions): Command {
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
The flags of master and worker and the connection flags of every command (--etcd, --root, TLS,
user, password, --dial-timeout, --log-level) can also come from an environment variable
(--etcd: ESCHEDULER_ETCD, --stop-timeout: ESCHEDULER_STOP_TIMEOUT; "<command> --help" shows each)
or from a --config JSON file; flags win, then variables. Boolean variables: true, false, 1 or 0.
Exit codes: 0 done (probe: ready), 1 failed (probe: not ready), 2 bad usage, bad module,
etcd unreachable or credentials refused (probe: cannot tell).
Run "escheduler <command> --help" for a command's flags.
`,
    );

  const master = program
    .command("master")
    .description("campaign for leadership; as leader, balance the generator's tasks over the workers");
  addSetting(master, "--generator <module>", "module whose default export returns the tasks (required)");
  addNodeOptions(master);
  addSetting(
    master,
    "--interval <duration>",
    `schedule at least this often (default ${ms(DEFAULTS.intervalMs)})`,
  );
  addSetting(
    master,
    "--rebalance-wait <duration>",
    `debounce worker changes this long before scheduling, at most twice that (default ${ms(DEFAULTS.rebalanceWaitMs)})`,
  );
  addSetting(
    master,
    "--timeout <duration>",
    `abort a generator call after this long (default ${ms(DEFAULTS.timeoutMs)})`,
  );
  addSetting(
    master,
    "--barrier-timeout <duration>",
    `first start: wait this long for --workers to gather (default ${ms(DEFAULTS.barrierTimeoutMs)})`,
  );
  addSetting(
    master,
    "--handoff <mode>",
    `wait (a moved task never runs twice) or immediate (default ${DEFAULTS.handoff})`,
  );
  addSetting(
    master,
    "--max-moving <n|percent>",
    `with --handoff wait: most tasks between owners at once, a count or % of the tasks (default ${DEFAULTS.maxMoving})`,
  );
  addSetting(
    master,
    "--http-admin",
    "offer operator actions in the web console at --http; each needs the bearer token in ESCHEDULER_ADMIN_TOKEN",
  );
  addSetting(
    master,
    "--max-removal <percent>",
    `refuse a schedule that stops more of the assigned tasks (default ${DEFAULTS.maxRemovalPercent}%; 100% never refuses)`,
  );
  addEscalationOptions(master);
  addSetting(
    master,
    "--reassign-delay <duration>",
    "keep a crashed worker's tasks this long for a worker of the same name (default 0: move them at once)",
  );
  master.action(actions.master);

  const worker = program
    .command("worker")
    .description("run the tasks the leader assigns to this node through a handler module");
  addSetting(worker, "--handler <module>", "module whose default export starts and stops tasks (required)");
  addNodeOptions(worker);
  addSetting(
    worker,
    "--max-workers <count>",
    "most workers registered at once; extra ones wait for a slot (default --workers; 0 for no cap)",
  );
  addSetting(worker, "--capacity <n>", "most load units this worker takes (default unlimited)");
  worker.addOption(labelOption());
  addSetting(
    worker,
    "--generation <name>",
    "rollout generation, e.g. the image tag; during a rollout tasks move to the newest (default: a hash of the handler module)",
  );
  addSetting(
    worker,
    "--stop-timeout <duration>",
    `give each task this long to stop (default ${ms(DEFAULTS.stopTimeoutMs)})`,
  );
  worker.action(actions.worker);

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

  addOperatorCommands(program, run);
  addTaskResetCommand(addTaskCommands(program, run), run);

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
    process.stderr.write(
      "escheduler: missing command (master, worker, status, probe, dev, plan, schedule, …); see --help\n",
    );
    return EXIT_USAGE;
  }
  const message = error.message.replace(/^error: /, "").replace(/\s*\n\s*/g, " ");
  process.stderr.write(`escheduler: ${message}\n`);
  return EXIT_USAGE;
}
