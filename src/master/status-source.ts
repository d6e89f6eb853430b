import type { Etcd3 } from "etcd3";
import {
  hasLease,
  type KeyLayout,
  type Logger,
  MAX_TXN_OPS,
  prefixRange,
  readNamedKeys,
  readPrefixPaged,
  readRangesPaged,
} from "../node/index.js";
import { PrefixWatcher, type ResyncEvent, type WatchChange } from "../watcher/index.js";

/**
 * The gate's live view of the status keys (a PrefixWatcher over `/R/status/`): every key, and of each
 * value what the leader reads of it (`keptStatus`); its changes carry the whole value.
 */
export interface StatusView {
  readonly entries: ReadonlyMap<string, string>;
  /** The revision the view reflects. */
  readonly revision: number;
  /** True when `key` is in the view and was written under a lease (a worker's report, not a hand-written key). */
  hasLease(key: string): boolean;
  on(event: "change", listener: (change: WatchChange) => void): unknown;
  on(event: "resync", listener: (event: ResyncEvent) => void): unknown;
  start(signal?: AbortSignal): Promise<unknown>;
  close(): Promise<void>;
}

/**
 * A linearizable read (so at or after every write this leader made) of the status keys: which of
 * `keys` exist, or every status key when `keys` is absent. A status without a lease was written by
 * hand: no worker runs the task behind it and it never expires, so it counts as absent.
 */
export type StatusRead = (keys?: readonly string[]) => Promise<{ revision: number; keys: string[] }>;

/** What the gate reads from etcd: the view it waits on, and reads that end a wait the view cannot. */
export interface StatusSource {
  view: StatusView;
  read: StatusRead;
  /**
   * A linearizable read of the status keys of `workers` only (with a lease, as `read`); the revision is
   * the lowest the reads were served at, so every key absent there was absent then.
   */
  readWorkers(workers: readonly string[]): Promise<{ revision: number; keys: string[] }>;
}

/** Whether a status reports handler failures (the escalation reads those); a text test, before any parsing. */
export function reportsFailures(value: string): boolean {
  return value.includes('"failures"');
}

/** Whether a status says its task runs (a text test, as for `reportsFailures`). */
export function reportsRunning(value: string): boolean {
  return value.includes('"state":"running"');
}

const RUNNING = '{"state":"running"}';
const NOT_RUNNING = "{}";

/**
 * What the leader keeps of a status value: all of it when it reports handler failures, else only
 * whether its task runs (the two facts read of it): 100,000 statuses' values are not held for that.
 */
export function keptStatus(value: string): string {
  if (reportsFailures(value)) return value;
  return reportsRunning(value) ? RUNNING : NOT_RUNNING;
}

/** The gate's status source on a real etcd. */
export function etcdStatusSource(client: Etcd3, keys: KeyLayout, logger: Logger): StatusSource {
  return {
    view: new PrefixWatcher(client, keys.statusPrefix, { logger, storedValue: keptStatus }),
    read: async (wanted) => {
      if (!wanted) {
        const all = await readPrefixPaged(client, keys.statusPrefix, { keysOnly: true });
        const live = all.kvs.filter((kv) => hasLease(kv, logger));
        return { revision: all.revision, keys: live.map((kv) => kv.key.toString()) };
      }
      const { revision, kvs } = await readNamedKeys(client, wanted);
      const present = kvs.filter((kv) => hasLease(kv, logger)).map((kv) => kv.key.toString());
      return { revision, keys: present };
    },
    readWorkers: async (workers) => {
      // One transaction per MAX_TXN_OPS workers' prefixes (a gone worker's is empty), in parallel.
      const chunks: string[][] = [];
      for (let i = 0; i < workers.length; i += MAX_TXN_OPS) chunks.push(workers.slice(i, i + MAX_TXN_OPS));
      const reads = await Promise.all(
        chunks.map((chunk) =>
          readRangesPaged(
            client,
            chunk.map((worker) => prefixRange(keys.workerStatusPrefix(worker), { keys_only: true })),
          ),
        ),
      );
      const live = reads.flatMap((read) => read.ranges.flat().filter((kv) => hasLease(kv, logger)));
      return {
        revision: Math.min(Number.MAX_SAFE_INTEGER, ...reads.map((read) => read.revision)),
        keys: live.map((kv) => kv.key.toString()),
      };
    },
  };
}
