/**
 * Shapes of the operator's own records (pins, task actions, the audit trail), zod-validated when read
 * like every record in records.ts. Who and why are optional everywhere: records written before the
 * audit trail existed stay readable.
 */
import { z } from "zod";

/** Who did an operator action (`--as`, default user@host; the console's admin token label) and why. */
export const actorFields = {
  by: z.string().optional(),
  reason: z.string().optional(),
};

/** The value of `/R/pin/<taskId>`: the leader keeps or puts the task on `worker` while it is eligible. */
export const pinRecordSchema = z.object({
  worker: z.string(),
  /** RFC 3339 time the operator pinned it. */
  at: z.string(),
  ...actorFields,
});
export type PinRecord = z.infer<typeof pinRecordSchema>;

/** A per-task action the leader carries out in its next schedule (`escheduler task restart|move`). */
export const taskActionSchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("restart"), task: z.string() }),
  z.object({ kind: z.literal("move"), task: z.string(), to: z.string() }),
]);
export type TaskAction = z.infer<typeof taskActionSchema>;

export const AUDIT_ACTIONS = [
  "cordon",
  "drain",
  "uncordon",
  "pause",
  "resume",
  "schedule",
  "release",
  "task restart",
  "task move",
  "task pin",
  "task unpin",
  "task reset",
] as const;

/** The value of `/R/audit/<time>-<random>`: one operator action, written with the action itself. */
export const auditRecordSchema = z.object({
  at: z.string(),
  /** One of AUDIT_ACTIONS (an unknown name from a newer version is still shown). */
  action: z.string(),
  by: z.string(),
  reason: z.string().optional(),
  worker: z.string().optional(),
  task: z.string().optional(),
  /** For a move or a pin: where to. */
  to: z.string().optional(),
});
export type AuditRecord = z.infer<typeof auditRecordSchema>;
