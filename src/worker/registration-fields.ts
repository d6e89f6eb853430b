import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { isAbsolute, resolve } from "node:path";
// The planner's rules for labels and generations (pure leaf modules), so both agree.
import { labelsProblem } from "../balancer/labels.js";
import { generationProblem } from "../balancer/rollout.js";
import { EschedulerError } from "../errors.js";
import type { WorkerInfo } from "../node/index.js";
import type { WorkerOptions } from "./types.js";

/** Characters of the handler module's SHA-256 that name a default generation. */
const HASH_CHARACTERS = 12;

/** The optional fields of a worker's registration. */
export type RegistrationFields = Pick<WorkerInfo, "capacity" | "labels" | "generation">;

/**
 * The optional fields of the worker's registration, checked: capacity, labels, and the rollout
 * generation (`options.generation`, else a short hash of the handler module's content, so a new build
 * is a new generation; none for a handler given as a value). Throws ERR_CONFIG naming a bad one.
 */
export function registrationFields(options: WorkerOptions, worker: string): RegistrationFields {
  const labels = labelsProblem(options.labels);
  if (labels) throw new EschedulerError("ERR_CONFIG", `worker ${worker}: ${labels}`);
  const named = options.generation === undefined ? undefined : generationProblem(options.generation);
  if (named) throw new EschedulerError("ERR_CONFIG", `worker ${worker}: generation ${named}`);
  const generation = options.generation ?? handlerGeneration(options.handler);
  return {
    ...(options.capacity === undefined ? {} : { capacity: options.capacity }),
    ...(options.labels === undefined ? {} : { labels: { ...options.labels } }),
    ...(generation === undefined ? {} : { generation }),
  };
}

/** A short hash of the handler module file's content; undefined for a handler value or an unreadable file. */
export function handlerGeneration(handler: WorkerOptions["handler"]): string | undefined {
  if (typeof handler !== "string") return undefined;
  const path = isAbsolute(handler) ? handler : resolve(process.cwd(), handler);
  try {
    return createHash("sha256").update(readFileSync(path)).digest("hex").slice(0, HASH_CHARACTERS);
  } catch {
    return undefined; // Loading the handler reports the unreadable module.
  }
}

/** What `/R/worker/<name>` holds for this process. */
export function registrationInfo(
  name: string,
  version: string | undefined,
  fields: RegistrationFields,
): WorkerInfo {
  return {
    name,
    host: hostname(),
    pid: process.pid,
    version: version ?? "unknown",
    startedAt: new Date().toISOString(),
    ...fields,
  };
}
