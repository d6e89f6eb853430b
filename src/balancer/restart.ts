import type { RestartPolicy } from "./types.js";

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/;

/** A restart window in milliseconds: a number, or a duration such as "500ms", "30s", "5m"; undefined when neither. */
export function windowMs(value: unknown): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) && value > 0 ? value : undefined;
  if (typeof value !== "string") return undefined;
  const match = DURATION.exec(value.trim());
  if (!match) return undefined;
  const millis = Number(match[1]) * (UNIT_MS[match[2] ?? "ms"] as number);
  return millis > 0 ? millis : undefined;
}

const isCount = (value: unknown) => typeof value === "number" && Number.isInteger(value) && value >= 0;

/** Why a task's `restart` override is bad, or undefined (the master, `plan` and the library share it). */
export function restartProblem(restart: unknown): string | undefined {
  if (restart === undefined) return undefined;
  if (restart === null || typeof restart !== "object" || Array.isArray(restart))
    return "restart must be an object {limit?, window?, quarantineAfter?}";
  const policy = restart as Record<string, unknown>;
  for (const field of Object.keys(policy)) {
    if (field !== "limit" && field !== "window" && field !== "quarantineAfter")
      return `restart: unknown field ${JSON.stringify(field)}`;
  }
  if (policy.limit !== undefined && !isCount(policy.limit))
    return `restart limit must be an integer ≥ 0, got ${JSON.stringify(policy.limit)}`;
  if (policy.quarantineAfter !== undefined && !isCount(policy.quarantineAfter))
    return `restart quarantineAfter must be an integer ≥ 0, got ${JSON.stringify(policy.quarantineAfter)}`;
  if (policy.window !== undefined && windowMs(policy.window) === undefined)
    return `restart window must be a positive duration (ms, or e.g. "30s", "5m"), got ${JSON.stringify(policy.window)}`;
  return undefined;
}

/** A restart policy with every field set and the window in milliseconds. */
export interface EffectiveRestartPolicy {
  limit: number;
  window: number;
  quarantineAfter: number;
}

/** The task's override over the master's defaults (the override must have passed `restartProblem`). */
export function effectiveRestartPolicy(
  override: RestartPolicy | undefined,
  defaults: EffectiveRestartPolicy,
): EffectiveRestartPolicy {
  if (override === undefined) return defaults;
  return {
    limit: override.limit ?? defaults.limit,
    window: override.window === undefined ? defaults.window : (windowMs(override.window) ?? defaults.window),
    quarantineAfter: override.quarantineAfter ?? defaults.quarantineAfter,
  };
}
