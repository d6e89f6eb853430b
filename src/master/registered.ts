import { generationProblem, labelsProblem } from "../balancer/index.js";
import type { KeyLayout, Logger } from "../node/index.js";

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

/** What the registration watch offers: the keys, and each one's lease and last write. */
interface RegistrationView {
  readonly entries: ReadonlyMap<string, string>;
  hasLease(key: string): boolean;
  modRevision(key: string): number | undefined;
}

/**
 * The registered workers of a registration view (a registration without a lease was written by hand
 * and is not one), worked out again only once the view moved on or `forget` was called: every hand-off
 * write asks, and a join's moves write hundreds of batches a second against 1,000 registrations.
 */
export class LiveWorkers {
  private cached?: { revision: number; names: ReadonlySet<string> };

  constructor(
    private readonly registrations: RegistrationView & { readonly revision: number },
    private readonly keys: KeyLayout,
  ) {}

  names(): ReadonlySet<string> {
    const { revision, entries } = this.registrations;
    if (this.cached?.revision === revision) return this.cached.names;
    const names = new Set<string>();
    for (const key of entries.keys()) {
      const name = this.registrations.hasLease(key) ? this.keys.parseWorker(key) : undefined;
      if (name !== undefined) names.add(name);
    }
    this.cached = { revision, names };
    return names;
  }

  list(): string[] {
    return [...this.names()];
  }

  /** Works the names out afresh on the next call (the view changed, whatever its revision says). */
  forget(): void {
    this.cached = undefined;
  }
}

/** Worker → the revision its registration was written at. */
export function joinedAt(registrations: RegistrationView, keys: KeyLayout): Map<string, number> {
  const joined = new Map<string, number>();
  for (const key of registrations.entries.keys()) {
    const name = keys.parseWorker(key);
    if (name) joined.set(name, registrations.modRevision(key) ?? 0);
  }
  return joined;
}
