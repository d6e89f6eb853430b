/** `escheduler task reset <id>`, added to the `task` command group. */
import type { Command } from "commander";
import { addConnectionOptions } from "./options.js";
import { AS_HELP } from "./task-commands.js";

type Action = (options: Record<string, unknown>, ...positional: string[]) => Promise<number>;
type Runner = (load: () => Promise<Action>) => (...args: unknown[]) => Promise<void>;

export function addTaskResetCommand(task: Command, run: Runner): void {
  addConnectionOptions(
    task
      .command("reset <id>")
      .description("forget where the task failed: a quarantined task is placed again")
      .option("--as <who>", AS_HELP)
      .option("--reason <text>", "why, recorded in the history")
      .option("--json", "print the result as JSON"),
  ).action(run(async () => (await import("./task-reset.js")).runTaskReset));
}
