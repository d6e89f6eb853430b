/** `escheduler task reset <id>`: clears a task's failure record (quarantine and avoided workers). */
import { z } from "zod";
import { assertValidName } from "../node/index.js";
import { resetTask } from "../operator/index.js";
import { parseConfig, sharedConfigSchema } from "./config.js";
import { connectEtcd } from "./connect.js";
import { EXIT_OK } from "./errors.js";
import { printable } from "./printable.js";

const schema = sharedConfigSchema.extend({
  as: z.string().optional(),
  reason: z.string().optional(),
  json: z.boolean().default(false),
});

export async function runTaskReset(options: Record<string, unknown>, taskId: string): Promise<number> {
  assertValidName("task id", taskId);
  const config = parseConfig(schema, options);
  const client = await connectEtcd(config);
  try {
    const result = await resetTask(client, config.root, taskId, { by: config.as, reason: config.reason });
    const where = result.failedOn.map((entry) => `${entry.worker} (${entry.error})`).join(", ");
    const line = result.reset
      ? `task ${taskId} reset: its failures on ${where || "no worker"} are forgotten; the leader places it again`
      : `task ${taskId} has no failure record: nothing to reset`;
    process.stdout.write(`${config.json ? JSON.stringify(result, null, 2) : printable(line)}\n`);
    return EXIT_OK;
  } finally {
    client.close();
  }
}
