/**
 * A record of every write under a root, as etcd's revision-continuous watch delivers it (from the
 * first revision the recorder saw), and the revision etcd is at.
 */
import type { Etcd3 } from "etcd3";
import { PrefixWatcher } from "../../src/watcher/index.js";
import { withEtcdRetry } from "./etcd-retry.js";

/** One write under the root, as the history's watch delivered it. */
export interface HistoryEvent {
  type: "put" | "delete";
  key: string;
  value: string;
  /** The write's revision; for a synthetic event (after a resync), the view's revision (see `gaps`). */
  revision: number;
  /** For a put: the key's mod revision (an election key is written once, so this is its create revision). */
  modRevision?: number;
  synthetic: boolean;
  /** When the watch delivered it. */
  seenAt: number;
}

/**
 * Records every write under a prefix through the project's PrefixWatcher (revision-continuous).
 * Where etcd could not replay the history (compaction, restart), the watcher resyncs; the revisions
 * in between are known only as a gap, and checks treat writes inside a gap as unattributable.
 */
export class EtcdHistory {
  readonly events: HistoryEvent[] = [];
  /** Revision ranges (from, to] the watch could not replay. */
  readonly gaps: Array<{ from: number; to: number }> = [];
  /** Watch streams that ended in an error (a leader change, no leader): each resumed from the view's revision. */
  interruptions = 0;

  private constructor(
    private readonly watcher: PrefixWatcher,
    private readonly prefix: string,
  ) {
    watcher.on("change", (change) => {
      this.events.push({
        type: change.type,
        key: change.key,
        value: change.type === "put" ? change.value : "",
        revision: change.revision,
        ...(change.type === "put" ? { modRevision: watcher.modRevision(change.key) ?? change.revision } : {}),
        synthetic: change.synthetic,
        seenAt: Date.now(),
      });
    });
    watcher.on("resync", (event) => this.gaps.push({ from: event.fromRevision, to: event.toRevision }));
    // The watcher retries by itself from its last revision; an error is only counted, never thrown.
    watcher.on("error", () => this.interruptions++);
  }

  static async record(client: Etcd3, prefix: string): Promise<EtcdHistory> {
    const watcher = new PrefixWatcher(client, prefix);
    const history = new EtcdHistory(watcher, prefix);
    await withEtcdRetry(() => watcher.start()); // a failed start leaves nothing running and may be retried
    return history;
  }

  /**
   * Resolves once the watch has delivered every write made before the call: it writes a marker key of
   * its own (outside escheduler's layout) and waits for the view to reach its revision. The marker's
   * write is retried through etcd's transient faults.
   */
  async caughtUp(client: Etcd3, timeoutMs = 10_000): Promise<void> {
    const written = await withEtcdRetry(() =>
      client.put(`${this.prefix}.history-mark`).value(String(Date.now())).exec(),
    );
    const revision = Number(written.header.revision);
    const deadline = Date.now() + timeoutMs;
    while (this.watcher.revision < revision) {
      if (Date.now() > deadline) throw new Error(`history watch did not reach revision ${revision}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  close(): Promise<void> {
    return this.watcher.close();
  }
}

/**
 * The revision etcd is at now (read through `key`, which the client must be allowed to read), retried
 * through etcd's transient faults (a leader change, no leader) for up to a minute.
 */
export async function currentRevision(client: Etcd3, key = "\u0000"): Promise<number> {
  const response = await withEtcdRetry(() => client.get(key).exec());
  return Number(response.header.revision);
}
