/** Exponential backoff with full jitter on the upper half: base, 2×base, … capped at `max`. */
export interface Backoff {
  /** Delay before the next attempt; grows on each call. */
  next(): number;
  reset(): void;
}

export function exponentialBackoff(options: { initialMs: number; maxMs: number; jitter?: number }): Backoff {
  const jitter = options.jitter ?? 0.5;
  let attempt = 0;
  return {
    next() {
      const ceiling = Math.min(options.maxMs, options.initialMs * 2 ** attempt);
      attempt++;
      return Math.round(ceiling * (1 - jitter * Math.random()));
    },
    reset() {
      attempt = 0;
    },
  };
}

/** Resolves after `ms`, or rejects with the signal's reason when aborted first; leaves no timer behind. */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
