/** The `escheduler task …` actions (etcd-level work in src/operator/task.ts). */
import type { Etcd3 } from "etcd3";
import { z } from "zod";
import { assertValidName, type ScheduleOutcome } from "../node/index.js";
import { moveTask, pinTask, restartTask, unpinTask } from "../operator/index.js";
import { duration, parseConfig, sharedConfigSchema } from "./config.js";
import { connectEtcd } from "./connect.js";
import { EXIT_FAILURE, EXIT_OK, usageError } from "./errors.js";
import { printable } from "./printable.js";

type Options = Record<string, unknown>;

const actorSchema = sharedConfigSchema.extend({
  as: z.string().optional(),
  reason: z.string().optional(),
  json: z.boolean().default(false),
});
const requestSchema = actorSchema.extend({ timeout: duration.default(30_000), to: z.string().optional() });

async function withEtcd(config: Parameters<typeof connectEtcd>[0], work: (client: Etcd3) => Promise<number>) {
  const client = await connectEtcd(config);
  try {
    return await work(client);
  } finally {
    client.close();
  }
}

const say = (json: boolean, value: unknown, line: string) =>
  process.stdout.write(`${json ? JSON.stringify(value, null, 2) : printable(line)}\n`);

/** Exit 0 applied; 1 refused or failed (the reason on stdout); 2 bad input or no leader in time. */
function answerOutcome(json: boolean, outcome: ScheduleOutcome, done: string, what: string): number {
  const line =
    outcome.state === "applied" ? done : `${what} ${outcome.state}: ${outcome.reason ?? "no reason given"}`;
  say(json, outcome, line);
  return outcome.state === "applied" ? EXIT_OK : EXIT_FAILURE;
}

export function runTaskRestart(options: Options, id: string): Promise<number> {
  assertValidName("task id", id);
  const config = parseConfig(requestSchema, options);
  return withEtcd(config, async (client) => {
    const outcome = await restartTask(client, config.root, id, {
      by: config.as,
      reason: config.reason,
      timeoutMs: config.timeout,
    });
    return answerOutcome(config.json, outcome, `task ${id} restarting on its worker`, `restart of ${id}`);
  });
}

export function runTaskMove(options: Options, id: string): Promise<number> {
  assertValidName("task id", id);
  const config = parseConfig(requestSchema, options);
  if (config.to === undefined) throw usageError("task move needs --to <worker>");
  const to = config.to;
  assertValidName("worker name", to);
  return withEtcd(config, async (client) => {
    const outcome = await moveTask(client, config.root, id, to, {
      by: config.as,
      reason: config.reason,
      timeoutMs: config.timeout,
    });
    return answerOutcome(config.json, outcome, `task ${id} moving to ${to}`, `move of ${id}`);
  });
}

export function runTaskPin(options: Options, id: string, worker: string): Promise<number> {
  assertValidName("task id", id);
  assertValidName("worker name", worker);
  const config = parseConfig(actorSchema, options);
  return withEtcd(config, async (client) => {
    const pinned = await pinTask(client, config.root, id, worker, { by: config.as, reason: config.reason });
    say(
      config.json,
      { pinned },
      `task ${id} pinned to ${worker}: it stays there while ${worker} is eligible`,
    );
    return EXIT_OK;
  });
}

export function runTaskUnpin(options: Options, id: string): Promise<number> {
  assertValidName("task id", id);
  const config = parseConfig(actorSchema, options);
  return withEtcd(config, async (client) => {
    const removed = await unpinTask(client, config.root, id, { by: config.as, reason: config.reason });
    say(
      config.json,
      { removed: removed ?? null },
      removed ? `task ${id} unpinned (was pinned to ${removed.worker})` : `task ${id} was not pinned`,
    );
    return EXIT_OK;
  });
}
