import ms from "ms";
import { z } from "zod";
import { EschedulerError } from "../errors.js";
import { nameProblem } from "./keys.js";

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

const hostPort = z
  .string()
  .regex(/^(\[[^\]]+\]|[^:]*):\d{1,5}$/, "must be host:port (e.g. 0.0.0.0:8080 or :8080)");

export const sharedConfigSchema = z.object({
  etcd: z
    .union([z.string(), z.array(z.string())])
    .default("127.0.0.1:2379")
    .transform((value) =>
      (Array.isArray(value) ? value : value.split(",")).map((h) => h.trim()).filter(Boolean),
    )
    .refine((hosts) => hosts.length > 0, "needs at least one endpoint"),
  root: name.default("escheduler"),
  name: name.optional(),
  ttl: duration
    .default(10_000)
    .refine((v) => v >= 1000, "must be at least 1s (etcd leases count whole seconds)"),
  workers: count.default(0),
  maxWorkers: count.optional(),
  http: hostPort.optional(),
  logLevel: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info"),
  etcdCa: z.string().optional(),
  etcdCert: z.string().optional(),
  etcdKey: z.string().optional(),
  etcdUser: z.string().optional(),
  etcdPassword: z.string().optional(),
  dialTimeout: duration.default(5_000),
});

export const masterConfigSchema = sharedConfigSchema.extend({
  interval: duration.default(60_000),
  rebalanceWait: duration.default(5_000),
  timeout: duration.default(30_000),
  barrierTimeout: duration.default(300_000),
  handoff: z.enum(["wait", "immediate"]).default("wait"),
});

export const workerConfigSchema = sharedConfigSchema.extend({
  capacity: z.coerce.number().positive().optional(),
  stopTimeout: duration.default(30_000),
});

export type SharedConfig = z.output<typeof sharedConfigSchema>;
export type MasterConfig = z.output<typeof masterConfigSchema>;
export type WorkerConfig = z.output<typeof workerConfigSchema>;

/** Environment variables that fill options the caller left out. */
const ENVIRONMENT: Record<string, string> = {
  etcd: "ESCHEDULER_ETCD",
  root: "ESCHEDULER_ROOT",
  etcdPassword: "ESCHEDULER_ETCD_PASSWORD",
};

/**
 * Validates options (flags first, then environment variables, then defaults).
 * Throws ERR_CONFIG naming the first bad field and its value.
 */
export function parseConfig<S extends z.ZodType>(
  schema: S,
  options: Record<string, unknown>,
  env: NodeJS.ProcessEnv = process.env,
): z.output<S> {
  const merged: Record<string, unknown> = {};
  for (const [field, variable] of Object.entries(ENVIRONMENT)) {
    if (env[variable] !== undefined && env[variable] !== "") merged[field] = env[variable];
  }
  for (const [field, value] of Object.entries(options)) {
    if (value !== undefined) merged[field] = value;
  }
  const result = schema.safeParse(merged);
  if (!result.success) {
    const issue = result.error.issues[0];
    const field = issue.path.join(".");
    const value = issue.path.reduce<unknown>((v, k) => (v as Record<PropertyKey, unknown>)?.[k], merged);
    throw new EschedulerError(
      "ERR_CONFIG",
      `invalid --${kebab(field)} ${JSON.stringify(value)}: ${issue.message}`,
    );
  }
  return result.data as z.output<S>;
}

/** The worker cap in force: `--max-workers`, else `--workers`, else none (0 means unlimited). */
export function workerCap(config: Pick<SharedConfig, "maxWorkers" | "workers">): number {
  return config.maxWorkers ?? config.workers ?? 0;
}

function kebab(field: string): string {
  return field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}
