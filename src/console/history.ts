/** The newest schedule records, re-read only when a new one was written (schedules are rare; refreshes are not). */
import { type Etcd3, SortOrder, SortTarget } from "etcd3";
import { type KeyLayout, prefixRangeEnd } from "../node/index.js";
import { type HistoryEntry, readHistory } from "../operator/index.js";

/** Most records the console keeps: the chart's span and the moves a search can show. */
export const HISTORY_TAIL = 200;

export class HistoryTail {
  /** Oldest first. */
  entries: HistoryEntry[] = [];

  constructor(
    private readonly root: string,
    private readonly keys: KeyLayout,
  ) {}

  async update(client: Etcd3): Promise<void> {
    // The newest key alone (keys only) says whether anything was added since the last read.
    const newest = await client.kv.range({
      key: Buffer.from(this.keys.historyPrefix),
      range_end: prefixRangeEnd(this.keys.historyPrefix),
      sort_target: SortTarget.Key,
      sort_order: SortOrder.Descend,
      limit: 1,
      keys_only: true,
    });
    const key = newest.kvs[0]?.key.toString();
    const revision = key === undefined ? undefined : this.keys.parseHistory(key);
    if (revision === this.entries.at(-1)?.revision) return;
    this.entries = await readHistory(client, this.root, { limit: HISTORY_TAIL });
  }

  /** The recent schedules that added, moved or removed `taskId`, oldest first. */
  movesOf(taskId: string): TaskMove[] {
    const moves: TaskMove[] = [];
    for (const entry of this.entries) {
      const move = entry.moves?.find((m) => m.id === taskId);
      if (move) moves.push({ ...move, at: entry.at, leader: entry.leader, reasons: entry.reasons });
    }
    return moves;
  }
}

export interface TaskMove {
  id: string;
  from?: string;
  to?: string;
  at: string;
  leader: string;
  reasons: string[];
}
