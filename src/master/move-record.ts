import { type Plan, type PlanInput, settleMoves } from "../balancer/index.js";

/**
 * What the leader remembers of earlier moves, so a plan moves the tasks that moved least and sends a
 * leaving worker's most-moved tasks to the youngest workers (`settleMoves`): in a rolling update no
 * task then moves more than twice. Kept in memory for one leadership; a new leader starts afresh.
 */
export class MoveRecord {
  private readonly owners = new Map<string, string>();
  private readonly moves = new Map<string, number>();

  /** Counts the moves completed since the last look: tasks now on another worker than before. */
  observe(current: ReadonlyMap<string, Iterable<string>>): void {
    const seen = new Set<string>();
    for (const [worker, ids] of current) {
      for (const id of ids) {
        seen.add(id);
        const before = this.owners.get(id);
        if (before !== undefined && before !== worker) this.moves.set(id, (this.moves.get(id) ?? 0) + 1);
        this.owners.set(id, worker);
      }
    }
    // A task between owners keeps its last owner; one no longer assigned anywhere is forgotten later.
    if (this.owners.size > seen.size * 2) {
      for (const id of this.owners.keys()) {
        if (!seen.has(id)) {
          this.owners.delete(id);
          this.moves.delete(id);
        }
      }
    }
  }

  /** `plan`'s moves chosen by history; `joinedAt` maps each worker to when it registered (higher: younger). */
  settle(plan: Plan, input: PlanInput, joinedAt: ReadonlyMap<string, number>): Plan {
    return settleMoves(plan, input, { moves: this.moves, joinedAt });
  }
}
