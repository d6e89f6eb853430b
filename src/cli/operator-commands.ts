/** The operator's commands on the command line; each loads its implementation only when run. */
import type { Command } from "commander";
import ms from "ms";
import { DEFAULTS } from "../node/defaults.js";
import { addConnectionOptions } from "./options.js";
import { AS_HELP } from "./task-commands.js";

type Action = (options: Record<string, unknown>, ...positional: string[]) => Promise<number>;
/** Wraps a lazily loaded action into a commander action (main.ts's `run`). */
type Runner = (load: () => Promise<Action>) => (...args: unknown[]) => Promise<void>;

export function addOperatorCommands(program: Command, run: Runner): void {
  const operator = async () => import("./operator.js");
  addConnectionOptions(
    program
      .command("pause")
      .description("stop every leader from writing schedules (survives failovers) until resume")
      .option("--reason <text>", "why, shown in status and to schedule requests")
      .option("--as <who>", AS_HELP)
      .option("--json", "print the result as JSON"),
  ).action(run(async () => (await operator()).runPause));
  addConnectionOptions(
    program
      .command("resume")
      .description("let schedules run again; the leader schedules once at once")
      .option("--reason <text>", "why, recorded in the history")
      .option("--as <who>", AS_HELP)
      .option("--json", "print the result as JSON"),
  ).action(run(async () => (await operator()).runResume));
  addConnectionOptions(
    program
      .command("cordon <worker>")
      .description("the worker keeps its tasks and takes nothing new")
      .option("--reason <text>", "why, shown in status")
      .option("--as <who>", AS_HELP)
      .option("--json", "print the result as JSON"),
  ).action(run(async () => (await operator()).runCordon));
  addConnectionOptions(
    program
      .command("drain <worker>")
      .description("hand the worker's tasks off; it stays registered and takes nothing new")
      .option("--reason <text>", "why, shown in status")
      .option("--as <who>", AS_HELP)
      .option("--wait", "return once the worker holds no task (exit 1 if it still does after --timeout)")
      .option("--timeout <duration>", "with --wait: give up after this long (default 2m)")
      .option("--json", "print the result as JSON"),
  ).action(run(async () => (await operator()).runDrain));
  addConnectionOptions(
    program
      .command("uncordon <worker>")
      .description("undo cordon or drain: the worker takes tasks again")
      .option("--reason <text>", "why, recorded in the history")
      .option("--as <who>", AS_HELP)
      .option("--json", "print the result as JSON"),
  ).action(run(async () => (await operator()).runUncordon));
  addConnectionOptions(
    program
      .command("release <worker>")
      .description("end the wait for a crashed worker's held tasks (--reassign-delay): they move now")
      .option("--reason <text>", "why, recorded in the hold and the audit trail")
      .option("--as <who>", AS_HELP)
      .option("--json", "print the result as JSON"),
  ).action(run(async () => (await operator()).runRelease));
  addConnectionOptions(
    program
      .command("schedule")
      .description(
        "ask the leader for a schedule now: exit 0 applied, 1 refused or failed, 2 no leader in time",
      )
      .option("--reason <text>", "recorded in the history")
      .option("--as <who>", AS_HELP)
      .option("--allow-removal", "let this one schedule stop more tasks than the leader's --max-removal")
      .option(
        "--timeout <duration>",
        `wait this long for the leader's answer (default ${ms(DEFAULTS.timeoutMs)})`,
      )
      .option("--json", "print the outcome as JSON"),
  ).action(run(async () => (await operator()).runSchedule));
  addConnectionOptions(
    program
      .command("history")
      .description("the last schedules (applied or refused), oldest first")
      .option("--limit <n>", "show the newest n records (default 20)")
      .option("--task <id>", "only schedules that moved, started or stopped this task")
      .option("--json", "print JSON instead of lines"),
  ).action(run(async () => (await operator()).runHistory));
  addConnectionOptions(
    program
      .command("plan")
      .description("what a schedule would do now (per worker, unassigned, balance); writes nothing")
      .option("--generator <module>", "module whose default export returns the tasks (required)")
      .option(
        "--timeout <duration>",
        `abort the generator after this long (default ${ms(DEFAULTS.timeoutMs)})`,
      )
      .option(
        "--max-removal <percent>",
        `the removal guard's limit to check against (default ${DEFAULTS.maxRemovalPercent}%)`,
      )
      .option("--json", "print JSON instead of a table"),
  ).action(run(async () => (await import("./plan.js")).runPlan));
}
