/**
 * Per-task operator actions (`escheduler task restart|move`), carried out by the leader inside one
 * schedule so they never race a schedule's read and writes: a move is one change of the plan (then
 * written, paced and handed off like any move), a restart deletes the task's key and writes it back
 * on the same worker through the hand-off gate once that worker's status for it is gone.
 */
import type { Plan } from "../balancer/index.js";
import { firstLine, isEschedulerError } from "../errors.js";
import type { PinRecord, ScheduleOutcome, TaskAction } from "../node/index.js";
import type { CurrentAssignment } from "./changes.js";
import type { Controls } from "./controls.js";
import type { HandoffGate } from "./handoff.js";
import { beginMove } from "./begun-moves.js";
import { pinProblem } from "./pins.js";
import type { RegisteredWorker } from "./registered.js";
import type { ScheduleContext } from "./schedule.js";
import type { TaskLookup, ValidTask } from "./validation.js";

export type ActionOutcome = Omit<ScheduleOutcome, "leader" | "epoch">;

interface Pending {
  action: TaskAction;
  answer: (outcome: ActionOutcome) => void;
}

/** What a schedule read, for checking its actions. */
export interface ActionFacts {
  current: CurrentAssignment;
  byId: TaskLookup;
  workers: readonly RegisteredWorker[];
  controls: Controls;
}

/** The leader's waiting actions; each schedule takes those waiting when it starts (`take`). */
export class TaskActionQueue {
  private waiting: Pending[] = [];

  /** Adds an action; resolves with its outcome once the schedule that carries it is over. */
  add(action: TaskAction): Promise<ActionOutcome> {
    return new Promise((answer) => this.waiting.push({ action, answer }));
  }

  /**
   * The actions of the schedule about to run, and the restarts in flight (undefined when there is
   * neither): a hold that writes a task back onto the worker it was removed from is a restart, begun
   * by this leader or an earlier one.
   */
  take(gate: HandoffGate | undefined): TaskActionBatch | undefined {
    const restarting = new Map<string, string>();
    for (const [taskId, put] of gate?.held() ?? [])
      if (put.recorded?.from === put.worker) restarting.set(taskId, put.worker);
    if (this.waiting.length === 0 && restarting.size === 0) return undefined;
    return new TaskActionBatch(this.waiting.splice(0), restarting);
  }

  /** Answers every action not taken by a schedule yet: refused while paused, else failed (`error`'s first line). */
  refuseWaiting(error: unknown): void {
    const batch = new TaskActionBatch(this.waiting.splice(0), new Map());
    batch.settle(error);
  }

  /** Answers every waiting action as failed (the leadership ended). */
  close(): void {
    this.refuseWaiting(new Error("the leadership ended first; ask again"));
  }
}

/** The actions one schedule carries out. */
export class TaskActionBatch {
  private readonly answers: Array<{ pending: Pending; outcome?: ActionOutcome }>;
  private readonly restarts: Array<{ taskId: string; worker: string }> = [];

  constructor(
    pending: Pending[],
    /** Restarts in flight: task id → the worker it is written back to. */
    readonly restarting: ReadonlyMap<string, string>,
  ) {
    this.answers = pending.map((entry) => ({ pending: entry }));
  }

  /** Pins that keep restarting tasks on their worker while their key is away, on top of the operator's. */
  pins(operatorPins: ReadonlyMap<string, PinRecord> | undefined): Map<string, PinRecord> {
    const pins = new Map(operatorPins);
    for (const [taskId, worker] of this.restarting) pins.set(taskId, { worker, at: "" });
    return pins;
  }

  /** Checks each action against what the schedule read and applies the moves to `target`; refusals are answered at `settle`. */
  adjustPlan(target: Plan | undefined, facts: ActionFacts): Plan | undefined {
    if (target) target = this.keepRestarts(target, facts.current);
    if (this.answers.length === 0) return target;
    const owners = new Map<string, string>();
    for (const [worker, ids] of facts.current) for (const id of ids.keys()) owners.set(id, worker);
    for (const entry of this.answers) {
      const { action } = entry.pending;
      const refusal = (reason: string) => {
        entry.outcome = { state: "refused", reason };
      };
      const from = owners.get(action.task);
      const valid = facts.byId.get(action.task);
      if (!valid) refusal(`task ${action.task} is not generated`);
      else if (!target || from === undefined) refusal(`task ${action.task} is not assigned to any worker`);
      else if (action.kind === "restart") {
        const planned = plannedOwner(target, action.task);
        if (planned !== from)
          refusal(`task ${action.task} moves from ${from} to ${planned ?? "nowhere"} in this schedule`);
        else this.restarts.push({ taskId: action.task, worker: from });
      } else {
        const problem = moveProblem(target, facts, valid, from, action.to);
        if (problem) refusal(problem);
        else target = moveInPlan(target, action.task, from, action.to);
      }
    }
    return target;
  }

  /**
   * The planner saw a restarting task as still on its worker; where it keeps it there, the put is
   * listed as an addition, so the schedule confirms the hold's target instead of dropping it.
   */
  private keepRestarts(target: Plan, current: CurrentAssignment): Plan {
    let add: Record<string, string[]> | undefined;
    for (const [taskId, worker] of this.restarting) {
      if (current.get(worker)?.has(taskId) || !target.assignment[worker]?.includes(taskId)) continue;
      if (target.add[worker]?.includes(taskId)) continue;
      add ??= Object.assign(Object.create(null), target.add) as Record<string, string[]>;
      add[worker] = [...(add[worker] ?? []), taskId];
    }
    return add ? { ...target, add } : target;
  }

  /** Deletes each restarted task's key, then writes it back on the same worker once its status is gone. */
  async restart(context: ScheduleContext, tasks: readonly ValidTask[]): Promise<void> {
    if (this.restarts.length === 0) return;
    const byId = new Map(tasks.map((valid) => [valid.task.id, valid]));
    const { keys, writer, signal } = context;
    const puts = this.restarts.flatMap(({ taskId, worker }) => {
      const valid = byId.get(taskId);
      if (!valid) return [];
      const key = keys.task(worker, taskId);
      return [{ taskId, worker, key, value: valid.value, priority: valid.task.priority ?? 0 }];
    });
    if (!context.handoffs) {
      await writer.commit(
        puts.map((put) => ({ type: "delete", key: put.key })),
        { signal, unlessPaused: true },
      );
      await writer.apply(
        puts.map((put) => ({ type: "put", key: put.key, value: put.value })),
        { signal },
      );
      return;
    }
    // A restart is a move onto the same worker: recorded with its removal, so a next leader finishes it.
    const recorded = puts.map((put) => ({ ...put, recorded: { from: put.worker } }));
    const revision = await writer.commit(
      recorded.map((put) => beginMove(keys, { type: "delete", key: put.key }, put.worker, put)),
      { signal, unlessPaused: true },
    );
    context.handoffs.holdBegun(recorded, revision);
  }

  /** Answers every action: its refusal, or how the schedule ended (applied, refused while paused, failed). */
  settle(error?: unknown): void {
    const ended: ActionOutcome =
      error === undefined
        ? { state: "applied" }
        : {
            state: isEschedulerError(error) && error.code === "ERR_PAUSED" ? "refused" : "failed",
            reason: firstLine(error),
          };
    for (const { pending, outcome } of this.answers) pending.answer(outcome ?? ended);
  }
}

/** The history reason of an action: "task move t1 → w2 by alice@ops: incident 4711". */
export function actionReason(action: TaskAction, actor: { by?: string; reason?: string }): string {
  const what =
    action.kind === "move" ? `task move ${action.task} → ${action.to}` : `task restart ${action.task}`;
  const who = actor.by ? ` by ${actor.by}` : "";
  return `${what}${who}${actor.reason ? `: ${actor.reason}` : ""}`;
}

function plannedOwner(target: Plan, taskId: string): string | undefined {
  for (const [worker, ids] of Object.entries(target.assignment)) if (ids.includes(taskId)) return worker;
  return undefined;
}

/** Why `valid` cannot move from `from` to `to` now, or undefined. */
function moveProblem(
  target: Plan,
  facts: ActionFacts,
  valid: ValidTask,
  from: string,
  to: string,
): string | undefined {
  const task = valid.task;
  if (to === from) return `task ${task.id} already runs on ${to}`;
  const pin = facts.controls.pins?.get(task.id);
  if (pin && pin.worker !== to) return `task ${task.id} is pinned to ${pin.worker} (unpin it first)`;
  const registered = new Map(facts.workers.map((worker) => [worker.name, worker]));
  const problem = pinProblem(task, to, registered, facts.controls.cordons, false);
  if (problem) return `cannot move ${task.id} to ${to}: ${problem}`;
  const there = target.assignment[to] ?? [];
  const capacity = registered.get(to)?.capacity;
  if (capacity !== undefined) {
    const load = there.reduce((sum, id) => sum + (facts.byId.get(id)?.task.weight ?? 1), 0);
    if (load + (task.weight ?? 1) > capacity)
      return `cannot move ${task.id} to ${to}: it is at capacity (${load} of ${capacity})`;
  }
  if (task.antiKey !== undefined && there.some((id) => facts.byId.get(id)?.task.antiKey === task.antiKey))
    return `cannot move ${task.id} to ${to}: it already runs a task with antiKey ${task.antiKey}`;
  return undefined;
}

/** `target` with `taskId` on `to` instead of where the plan put it (the diff follows). */
function moveInPlan(target: Plan, taskId: string, from: string, to: string): Plan {
  const planned = plannedOwner(target, taskId);
  const without = (list: readonly string[] | undefined) => (list ?? []).filter((id) => id !== taskId);
  // Plans use null-prototype records: any worker name is a safe key.
  const copy = (record: Record<string, string[]>) =>
    Object.assign(Object.create(null), record) as typeof record;
  const assignment = copy(target.assignment);
  const add = copy(target.add);
  const remove = copy(target.remove);
  if (planned !== undefined) {
    assignment[planned] = without(assignment[planned]);
    add[planned] = without(add[planned]);
    if (add[planned].length === 0) delete add[planned];
  }
  assignment[to] = [...(assignment[to] ?? []), taskId];
  add[to] = [...without(add[to]), taskId];
  if (!(remove[from] ?? []).includes(taskId)) remove[from] = [...(remove[from] ?? []), taskId];
  const moved = target.moved + (planned === from || planned === undefined ? 1 : 0);
  return { ...target, assignment, add, remove, moved };
}
