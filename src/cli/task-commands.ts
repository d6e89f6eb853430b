/** `escheduler task …`: per-task operator actions; each loads its implementation only when run. */
import type { Command } from "commander";
import { addConnectionOptions } from "./options.js";

type Action = (options: Record<string, unknown>, ...positional: string[]) => Promise<number>;
/** Wraps a lazily loaded action into a commander action (main.ts's `run`). */
type Runner = (load: () => Promise<Action>) => (...args: unknown[]) => Promise<void>;

export const AS_HELP = "who does this, recorded in the key and the history (default user@host)";

/** The `task` command group; other per-task actions are added to the group it returns. */
export function addTaskCommands(program: Command, run: Runner): Command {
  const task = program
    .command("task")
    .description("per-task actions: restart, move, pin, unpin (see task <action> --help)");
  const actions = async () => import("./task.js");
  const withActor = (command: Command) =>
    addConnectionOptions(
      command
        .option("--as <who>", AS_HELP)
        .option("--reason <text>", "why, recorded in the key and the history")
        .option("--json", "print the result as JSON"),
    );
  withActor(
    task
      .command("restart <id>")
      .description("stop the task and start it again on the worker that runs it (through the leader)")
      .option("--timeout <duration>", "wait this long for the leader's answer (default 30s)"),
  ).action(run(async () => (await actions()).runTaskRestart));
  withActor(
    task
      .command("move <id>")
      .description(
        "move the task to --to <worker>: one move, the old owner stops it before the new one starts",
      )
      .option("--to <worker>", "the worker to move it to (required)")
      .option("--timeout <duration>", "wait this long for the leader's answer (default 30s)"),
  ).action(run(async () => (await actions()).runTaskMove));
  withActor(
    task
      .command("pin <id> <worker>")
      .description("keep the task on <worker> while it is eligible (survives leader changes)"),
  ).action(run(async () => (await actions()).runTaskPin));
  withActor(task.command("unpin <id>").description("remove the task's pin")).action(
    run(async () => (await actions()).runTaskUnpin),
  );
  return task;
}
