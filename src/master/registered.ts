import { labelsProblem } from "../balancer/index.js";
import type { Logger } from "../node/index.js";

/** A live worker as the planner sees it. */
export interface RegisteredWorker {
  name: string;
  capacity?: number;
  labels?: Record<string, string>;
}

/** Labels a selector cannot match (not label syntax) are dropped with a warning: they must not stop schedules. */
export function registeredWorker(
  name: string,
  info: { capacity?: number; labels?: Record<string, string> } | undefined,
  logger: Logger,
): RegisteredWorker {
  const worker: RegisteredWorker = { name };
  if (info?.capacity !== undefined) worker.capacity = info.capacity;
  if (info?.labels === undefined) return worker;
  const problem = labelsProblem(info.labels);
  if (problem) logger.warn({ worker: name, problem }, "worker labels ignored");
  else worker.labels = info.labels;
  return worker;
}
