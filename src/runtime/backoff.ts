import { setTimeout as sleep } from "node:timers/promises";
import { ExponentialBackoff, halfJitterGenerator, type IBackoff } from "cockatiel";

/** A retry delay that grows with each `next()` until `reset()`. */
export interface Backoff {
  /** Delay before the next attempt; grows on each call. */
  next(): number;
  reset(): void;
}

/**
 * cockatiel's exponential backoff (base, 2×base, … capped at `maxMs`, each drawn from the upper half
 * of its step) as one resettable sequence, the shape every retry loop here wants.
 */
export function exponentialBackoff(options: { initialMs: number; maxMs: number }): Backoff {
  const factory = new ExponentialBackoff({
    initialDelay: options.initialMs,
    maxDelay: options.maxMs,
    generator: halfJitterGenerator,
  });
  let current: IBackoff<unknown> | undefined;
  return {
    next() {
      current = current ? current.next(undefined) : factory.next();
      return current.duration;
    },
    reset() {
      current = undefined;
    },
  };
}

/**
 * Resolves after `ms` (node:timers/promises), or rejects when `signal` aborts first — with the
 * signal's own reason, as every caller here expects, rather than Node's AbortError around it.
 */
export async function delay(ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await sleep(ms, undefined, { signal });
  } catch (error) {
    throw signal?.aborted ? signal.reason : error;
  }
}
