import { generationProblem, labelsProblem } from "../balancer/index.js";
import type { Logger } from "../node/index.js";

/** A live worker as the planner sees it. */
export interface RegisteredWorker {
  name: string;
  capacity?: number;
  labels?: Record<string, string>;
  /** Rollout generation (see rollout.ts). */
  generation?: string;
  /** Revision the registration was created at: when the worker joined. */
  registeredAt?: number;
}

/** Labels a selector cannot match (not label syntax) are dropped with a warning: they must not stop schedules. */
export function registeredWorker(
  name: string,
  info: { capacity?: number; labels?: Record<string, string>; generation?: string } | undefined,
  logger: Logger,
  registeredAt?: number,
): RegisteredWorker {
  const worker: RegisteredWorker = { name };
  if (info?.capacity !== undefined) worker.capacity = info.capacity;
  if (registeredAt !== undefined) worker.registeredAt = registeredAt;
  const generation = info?.generation === undefined ? undefined : generationProblem(info.generation);
  if (generation) logger.warn({ worker: name, problem: generation }, "worker generation ignored");
  else if (info?.generation !== undefined) worker.generation = info.generation;
  if (info?.labels === undefined) return worker;
  const problem = labelsProblem(info.labels);
  if (problem) logger.warn({ worker: name, problem }, "worker labels ignored");
  else worker.labels = info.labels;
  return worker;
}
