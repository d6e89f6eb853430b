/**
 * The harness's own etcd calls (history watch start and marks, revision reads, cluster reads) ride out
 * etcd's transient faults — a leader change, no leader, a member unavailable, a deadline, a proposal
 * dropped while leadership moves — by trying again within a bound. Anything else is not retried: a
 * harness bug must show, not be waited out.
 */
import { GRPCDeadlineExceededError, GRPCUnavailableError } from "etcd3";

const TRANSIENT =
  /leader changed|no leader|not leader|unavailable|deadline|timed out|timeout|too many requests|ECONNRESET|ECONNREFUSED|EPIPE|circuit|stream removed|connection (closed|dropped|reset)|raft proposal dropped/i;

/** True for an etcd error that a later attempt can cure (leader changed, no leader, unavailable, deadline). */
export function isTransientEtcdError(error: unknown): boolean {
  if (error instanceof GRPCUnavailableError || error instanceof GRPCDeadlineExceededError) return true;
  const message = error instanceof Error ? error.message : String(error);
  return TRANSIENT.test(message);
}

export interface EtcdRetryOptions {
  /** Give up (rethrowing the last error) once this long has passed since the first attempt. */
  timeoutMs?: number;
  /** Pause before the first retry; doubles up to `maxDelayMs`. */
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** Called before each retry with the error that caused it. */
  onRetry?: (error: unknown, attempt: number) => void;
}

/** `call`, tried again while it fails with a transient etcd error, for up to `timeoutMs` (default 60 s). */
export async function withEtcdRetry<T>(call: () => Promise<T>, options: EtcdRetryOptions = {}): Promise<T> {
  const { timeoutMs = 60_000, initialDelayMs = 100, maxDelayMs = 1_000 } = options;
  const deadline = Date.now() + timeoutMs;
  let pause = initialDelayMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      if (!isTransientEtcdError(error) || Date.now() + pause > deadline) throw error;
      options.onRetry?.(error, attempt);
      await new Promise((resolve) => setTimeout(resolve, pause));
      pause = Math.min(pause * 2, maxDelayMs);
    }
  }
}
