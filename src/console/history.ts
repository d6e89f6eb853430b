/** A task's recent moves, from the schedule records the console holds. */
import type { HistoryEntry } from "../operator/index.js";

/** Most records the console keeps: the chart's span and the moves a search can show. */
export const HISTORY_TAIL = 200;

/** The schedules in `entries` (oldest first) that added, moved or removed `taskId`, oldest first. */
export function movesOf(entries: readonly HistoryEntry[], taskId: string): TaskMove[] {
  const moves: TaskMove[] = [];
  for (const entry of entries) {
    const move = entry.moves.find((m) => m.id === taskId);
    if (move) moves.push({ ...move, at: entry.at, leader: entry.leader, reasons: entry.reasons });
  }
  return moves;
}

export interface TaskMove {
  id: string;
  from?: string;
  to?: string;
  at: string;
  leader: string;
  reasons: string[];
}
