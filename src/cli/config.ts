import { labelsSetting } from "./labels.js";
import ms from "ms";
import { z } from "zod";
import { readFileSync } from "node:fs";
import { EschedulerError } from "../errors.js";
import { DEFAULTS } from "../node/defaults.js";
import { maxMovingProblem } from "../master/index.js";
import { nameProblem } from "../node/keys.js";
import { generationProblem } from "../balancer/index.js";

/** A duration as milliseconds: a number, or an `ms` string such as "500ms", "10s", "2m". */
export const duration = z.union([z.number(), z.string()]).transform((value, ctx) => {
  const millis = typeof value === "number" ? value : ms(value.trim() as ms.StringValue);
  if (typeof millis !== "number" || !Number.isFinite(millis) || millis < 0) {
    ctx.addIssue({ code: "custom", message: `not a duration (use e.g. 500ms, 10s, 2m)` });
    return z.NEVER;
  }
  return millis;
});

const name = z.string().superRefine((value, ctx) => {
  const problem = nameProblem(value);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
});

const count = z.coerce.number().int().min(0);

const BOOLEAN_TEXT: ReadonlyMap<string, boolean> = new Map([
  ["true", true],
  ["1", true],
  ["false", false],
  ["0", false],
]);

/** `true`, `1`, `false` or `0` as a boolean; undefined for anything else (a typo must not mean "on"). */
export function parseBooleanText(text: string): boolean | undefined {
  return BOOLEAN_TEXT.get(text);
}

/** A boolean setting: true or false, or (from a variable or a file) "true", "false", 1, 0, "1", "0". */
export const booleanSetting = z.union([z.boolean(), z.string(), z.number()]).transform((value, ctx) => {
  const parsed = typeof value === "boolean" ? value : parseBooleanText(String(value));
  if (parsed === undefined) {
    ctx.addIssue({ code: "custom", message: "must be true, false, 1 or 0" });
    return z.NEVER;
  }
  return parsed;
});

const hostPort = z
  .string()
  .regex(/^(\[[^\]]+\]|[^:]*):\d{1,5}$/, "must be host:port (e.g. 0.0.0.0:8080 or :8080)");

export const sharedConfigSchema = z.object({
  etcd: z
    .union([z.string(), z.array(z.string())])
    .default(DEFAULTS.etcd)
    .transform((value) =>
      (Array.isArray(value) ? value : value.split(",")).map((h) => h.trim()).filter(Boolean),
    )
    .refine((hosts) => hosts.length > 0, "needs at least one endpoint"),
  root: name.default(DEFAULTS.root),
  name: name.optional(),
  ttl: duration
    .default(DEFAULTS.ttlMs)
    .refine((v) => v >= 1000, "must be at least 1s (etcd leases count whole seconds)"),
  workers: count.default(DEFAULTS.expectedWorkers),
  maxWorkers: count.optional(),
  http: hostPort.optional(),
  logLevel: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default(DEFAULTS.logLevel),
  etcdCa: z.string().optional(),
  etcdCert: z.string().optional(),
  etcdKey: z.string().optional(),
  etcdUser: z.string().optional(),
  etcdPassword: z.string().optional(),
  dialTimeout: duration.default(DEFAULTS.dialTimeoutMs),
});

const maxMoving = z.union([z.number(), z.string()]).superRefine((value, ctx) => {
  const problem = maxMovingProblem(value);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
});
/** A percentage from 0 to 100, written `50%` or `50`. */
export const percent = z.preprocess(
  (value) => (typeof value === "string" ? Number(value.trim().replace(/%$/, "")) : value),
  z.number().min(0, "must be 0% to 100%").max(100, "must be 0% to 100%"),
);

export const masterConfigSchema = sharedConfigSchema.extend({
  interval: duration.default(DEFAULTS.intervalMs),
  rebalanceWait: duration.default(DEFAULTS.rebalanceWaitMs),
  timeout: duration.default(DEFAULTS.timeoutMs),
  barrierTimeout: duration.default(DEFAULTS.barrierTimeoutMs),
  handoff: z.enum(["wait", "immediate"]).default(DEFAULTS.handoff),
  maxMoving: maxMoving.default(DEFAULTS.maxMoving),
  httpAdmin: booleanSetting.default(false),
  maxRemoval: percent.default(DEFAULTS.maxRemovalPercent),
  restartLimit: count.default(DEFAULTS.restartLimit),
  restartWindow: duration.default(DEFAULTS.restartWindowMs).refine((v) => v > 0, "must be more than 0"),
  quarantineAfter: count.default(DEFAULTS.quarantineAfter),
  autoCordonAfter: count.default(DEFAULTS.autoCordonAfter),
  reassignDelay: duration.default(DEFAULTS.reassignDelayMs),
});

export const workerConfigSchema = sharedConfigSchema.extend({
  capacity: z.coerce.number().positive().optional(),
  labels: labelsSetting.optional(),
  generation: z
    .string()
    .optional()
    .superRefine((value, ctx) => {
      const problem = value === undefined ? undefined : generationProblem(value);
      if (problem) ctx.addIssue({ code: "custom", message: problem });
    }),
  /** Undefined: the default, which bounds a drain and raises no lease-margin warning. */
  stopTimeout: duration.optional(),
});

export type SharedConfig = z.output<typeof sharedConfigSchema>;
export type MasterConfig = z.output<typeof masterConfigSchema>;
export type WorkerConfig = z.output<typeof workerConfigSchema>;

/**
 * Validates options (already merged: flags, then environment variables, then a --config file) and
 * fills the defaults. Throws ERR_CONFIG naming the first bad field and its value.
 */
export function parseConfig<S extends z.ZodType>(schema: S, options: Record<string, unknown>): z.output<S> {
  const given = Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));
  const result = schema.safeParse(given);
  if (!result.success) {
    const issue = result.error.issues[0];
    const field = issue.path.join(".");
    const value = issue.path.reduce<unknown>((v, k) => (v as Record<PropertyKey, unknown>)?.[k], given);
    throw new EschedulerError(
      "ERR_CONFIG",
      `invalid --${kebab(field)} ${JSON.stringify(value)}: ${issue.message}`,
    );
  }
  return result.data as z.output<S>;
}

/**
 * The settings of a `--config <file.json>`: one JSON object whose keys are flag names without the
 * dashes (`"etcd-ca"` or `"etcdCa"`), each allowed only where `known` (the command's options) has it.
 */
export function readConfigFile(path: string, known: ReadonlySet<string>): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new EschedulerError("ERR_CONFIG", `invalid --config ${JSON.stringify(path)}: ${reason}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new EschedulerError("ERR_CONFIG", `invalid --config ${JSON.stringify(path)}: not a JSON object`);
  }
  const settings: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(parsed)) {
    const field = key.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    if (!known.has(field) || field === "config") {
      throw new EschedulerError(
        "ERR_CONFIG",
        `invalid --config ${JSON.stringify(path)}: unknown setting ${JSON.stringify(key)} for this command`,
      );
    }
    settings[field] = value;
  }
  return settings;
}

/** The worker cap in force: `--max-workers`, else `--workers`, else none (0 means unlimited). */
export function workerCap(config: Pick<SharedConfig, "maxWorkers" | "workers">): number {
  return config.maxWorkers ?? config.workers ?? 0;
}

function kebab(field: string): string {
  return field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}
