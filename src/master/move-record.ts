import { type MoveHistory, type Plan, type PlanInput, settleMoves } from "../balancer/index.js";

/**
 * What the leader remembers of earlier moves, so a plan moves the tasks that moved least and sends a
 * leaving worker's most-moved tasks to the youngest workers (`settleMoves`): in a rolling update no
 * task then moves more than twice. Kept in memory for one leadership; a new leader starts afresh.
 */
export class MoveRecord {
  /** Task id → its last owner, and the look that last saw it assigned. */
  private readonly owners = new Map<string, { worker: string; seen: number }>();
  private readonly moves = new Map<string, number>();
  private looks = 0;

  /** Counts the moves completed since the last look: tasks now on another worker than before. */
  observe(current: ReadonlyMap<string, Iterable<string>>): void {
    // One lookup per assigned task, and no set of them: a look stamps each owner record it finds.
    const look = ++this.looks;
    let seen = 0;
    for (const [worker, ids] of current) {
      for (const id of ids) {
        const owner = this.owners.get(id);
        if (owner === undefined) {
          this.owners.set(id, { worker, seen: look });
          seen++;
          continue;
        }
        if (owner.seen !== look) seen++;
        owner.seen = look;
        if (owner.worker !== worker) {
          this.moves.set(id, (this.moves.get(id) ?? 0) + 1);
          owner.worker = worker;
        }
      }
    }
    // A task between owners keeps its last owner; one no longer assigned anywhere is forgotten later.
    if (this.owners.size > seen * 2) {
      for (const [id, owner] of this.owners) {
        if (owner.seen !== look) {
          this.owners.delete(id);
          this.moves.delete(id);
        }
      }
    }
  }

  /**
   * `plan`'s moves chosen by history; `joinedAt` maps each worker to when it registered (higher:
   * younger); `known`: the caller's indexes of the input's tasks and owners, if it has them.
   */
  settle(
    plan: Plan,
    input: PlanInput,
    joinedAt: ReadonlyMap<string, number>,
    known: Pick<MoveHistory, "positions" | "owners"> = {},
  ): Plan {
    return settleMoves(plan, input, { moves: this.moves, joinedAt, ...known });
  }
}
