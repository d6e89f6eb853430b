/** The newest schedule records, re-read only when a new one was written (schedules are rare; refreshes are not). */
import type { Etcd3 } from "etcd3";
import type { KeyLayout, Logger } from "../node/index.js";
import { type HistoryEntry, newestHistoryRevision, readHistory } from "../operator/index.js";

/** Most records the console keeps: the chart's span and the moves a search can show. */
export const HISTORY_TAIL = 200;

export class HistoryTail {
  /** Oldest first. */
  entries: HistoryEntry[] = [];
  /** The newest history key's revision when `entries` was read (a bad newest record is not in `entries`). */
  private newest?: number;
  private read = false;

  constructor(
    private readonly root: string,
    private readonly keys: KeyLayout,
    private readonly logger: Logger,
  ) {}

  async update(client: Etcd3): Promise<void> {
    // The newest key alone (keys only) says whether anything was added since the last read.
    const revision = await newestHistoryRevision(client, this.keys);
    if (this.read && revision === this.newest) return;
    this.entries = await readHistory(client, this.root, { limit: HISTORY_TAIL, logger: this.logger });
    this.newest = revision;
    this.read = true;
  }

  /** The recent schedules that added, moved or removed `taskId`, oldest first. */
  movesOf(taskId: string): TaskMove[] {
    const moves: TaskMove[] = [];
    for (const entry of this.entries) {
      const move = entry.moves.find((m) => m.id === taskId);
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
