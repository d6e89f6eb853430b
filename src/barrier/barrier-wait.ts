import type { Etcd3 } from "etcd3";
import { EschedulerError } from "../errors.js";
import type { Logger } from "../node/index.js";
import { delay, exponentialBackoff } from "../runtime/index.js";
import { PrefixWatcher } from "../watcher/index.js";

/** What ends one wait of a participant (see `waitForBarrier`). */
export interface BarrierWait {
  /** The barrier's ready key: the only key a participant watches. */
  readyKey: string;
  /** Whether the ready key as the watch shows it (its mod revision; undefined: absent) ends the wait. */
  readyShows(readyRevision: number | undefined): boolean;
  /** Whether a change of the ready key calls for a `check` (a leave: its deletion is the last leaver's word). */
  checkOnChange: boolean;
  /** Reads etcd itself; true ends the wait. Called at the start when `checkFirst`, and every poll. */
  check(): Promise<boolean>;
  checkFirst: boolean;
  /** How often `check` runs while waiting (a quarter around it either way, so participants spread); undefined: never. */
  pollMs?: number;
  /** For the timeout's error: how far the barrier got (read when it fires). */
  progress(): Promise<string>;
  /** Names the barrier in the timeout's error. */
  label: string;
}

/**
 * Waits until the watch of the ready key, or a `check`, ends the wait. Each participant watches that
 * one key, not the participants: a fleet of n gathering costs n watch events, where a watch of every
 * participant's key delivered each arrival and departure to all of them (n² events, and at a thousand
 * participants minutes of CPU). Counting is left to `check`: at the start when the participant's own
 * arrival or departure calls for it, on the changes that do, and on a poll where one is asked for. Throws ERR_BARRIER_TIMEOUT with the progress after
 * `timeoutMs`, or the abort reason.
 */
export async function waitForBarrier(
  client: Etcd3,
  logger: Logger,
  wait: BarrierWait,
  signal: AbortSignal,
  timeoutMs: number | undefined,
): Promise<void> {
  const watcher = new PrefixWatcher(client, wait.readyKey, { logger });
  const finished = new AbortController();
  const stop = AbortSignal.any([signal, finished.signal]);
  const timers = new Set<NodeJS.Timeout>();
  let onAbort: (() => void) | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      /** The check in flight: its writes may still land, so a wait that gives up first hears its outcome. */
      let checking: Promise<boolean> | undefined;
      const settle = (error?: unknown) => {
        if (settled) return;
        settled = true;
        if (error === undefined) return resolve();
        // A check that ends the wait (its own write completed the barrier) wins over giving up meanwhile.
        if (!checking) return reject(error);
        checking.then((done) => (done ? resolve() : reject(error)));
      };
      const check = () => {
        if (settled || checking) return;
        const running = wait.check().catch((error: unknown) => {
          logger.debug({ err: error }, "barrier check failed; checking again later");
          return false;
        });
        checking = running;
        void running.then((done) => {
          checking = undefined;
          if (done) settle();
        });
      };
      const evaluate = () => {
        if (settled) return;
        if (wait.readyShows(watcher.modRevision(wait.readyKey))) settle();
        else if (wait.checkOnChange) check();
      };
      const poll = () => {
        if (wait.pollMs === undefined) return;
        const timer = setTimeout(
          () => {
            timers.delete(timer);
            check();
            poll();
          },
          wait.pollMs * (0.75 + Math.random() / 2),
        );
        timers.add(timer);
      };
      onAbort = () => settle(signal.reason ?? new EschedulerError("ERR_ABORTED", "barrier wait aborted"));
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
      if (timeoutMs !== undefined) {
        timers.add(
          setTimeout(() => {
            void wait.progress().then(
              (progress) => settle(timedOut(wait.label, progress, timeoutMs)),
              (error: unknown) =>
                settle(timedOut(wait.label, `progress unknown (${String(error)})`, timeoutMs)),
            );
          }, timeoutMs),
        );
      }
      watcher.on("change", evaluate);
      watcher.on("resync", evaluate);
      if (wait.checkFirst) check();
      poll();
      void (async () => {
        const backoff = exponentialBackoff({ initialMs: 100, maxMs: 2_000 });
        while (!settled) {
          try {
            await watcher.start(stop);
            return evaluate();
          } catch (error) {
            if (stop.aborted) return;
            logger.warn({ err: error }, "cannot read the barrier yet; retrying");
            await delay(backoff.next(), stop).catch(() => undefined);
          }
        }
      })();
    });
  } finally {
    finished.abort();
    if (onAbort) signal.removeEventListener("abort", onAbort);
    for (const timer of timers) clearTimeout(timer);
    await watcher.close();
  }
}

function timedOut(label: string, progress: string, timeoutMs: number): EschedulerError {
  return new EschedulerError("ERR_BARRIER_TIMEOUT", `barrier ${label}: ${progress} after ${timeoutMs}ms`);
}
