import { eligibleOn, type Labels, type Task } from "../balancer/index.js";
import type { BegunMove, KeyLayout } from "../node/index.js";
import type { Escalated } from "./escalation-input.js";
import type { HeldPut } from "./handoff-puts.js";

/** What etcd's history says of a move record (see move-proof.ts). */
export type Verdict = "genuine" | "forged" | "compacted";

/** A task as the leader's generator makes it now, after the failure escalation (never a quarantined one). */
export interface GeneratedTask {
  value: string;
  priority: number;
  /** Workers its failures keep it off. */
  exclude: readonly string[];
  /** What the planner reads of it: key, selector, spread, antiKey. */
  task: Task;
}

/** A record's target worker now. */
export interface MoveTarget {
  /** Its live registration's labels. */
  labels?: Labels;
  /** An operator's cordon or drain record, or its own draining mark (`drain`). */
  mode?: "cordon" | "drain";
}

/** What etcd and the generator say now of the task of a record whose history is compacted. */
export interface MoveFacts {
  /** Workers holding `/R/task/<worker>/<taskId>`, registered or not. */
  assignedTo: readonly string[];
  /** Workers with a status key for the task. */
  reportedBy: readonly string[];
  /** The task as generated now; undefined: not generated, or quarantined. */
  generated?: GeneratedTask;
  /** Why the generated tasks are unknown (the generator failed); `generated` is then meaningless. */
  generatorError?: string;
  /** The record's target `to`; undefined when it has no live registration. */
  target?: MoveTarget;
  /** Workers assigned another generated task with the task's `key`. */
  keyWorkers: readonly string[];
  /** Workers assigned another generated task with the task's `antiKey`. */
  antiKeyWorkers: readonly string[];
}

export type MoveDecision =
  { action: "finish"; put: HeldPut } | { action: "delete"; verdict: "forged" | "compacted"; reason: string };

/**
 * What a new term does with a move record. A genuine one (history proves a leader wrote it) is finished
 * as recorded; a forged one is deleted.
 *
 * A record whose history etcd compacted proves nothing: it may be a move begun long ago (its old owner
 * slow to stop) or one written by hand. Deleting it loses a genuine move's task while schedules are
 * paused or refused (nothing else places it), so it is finished only when finishing it is a write a
 * schedule could make and is harmless if the record is forged: the task is generated now (not
 * quarantined, not kept off the target by its failures) and assigned to no worker at all, and the target
 * is one a schedule could give it: registered, neither cordoned nor draining, matching the task's selector
 * and spread label, holding no task of its antiKey, and the worker of its key's other assigned tasks if
 * any. Then the put
 * writes the generated value (never the record's), and waits for every worker still reporting the task
 * (not only the record's old owner), exactly as a schedule placing an unassigned task on that worker
 * would; the worst a forged record does is choose that worker, which the next applied schedule may
 * change. Any other such record is deleted with the reason.
 */
export function decideMove(
  keys: KeyLayout,
  taskId: string,
  record: BegunMove,
  verdict: Verdict,
  facts?: MoveFacts,
): MoveDecision {
  const { from, to } = record;
  if (verdict === "genuine") {
    const put = { taskId, worker: to, key: keys.task(to, taskId), value: record.value };
    const blockers = [keys.status(from, taskId)];
    return {
      action: "finish",
      put: { ...put, priority: record.priority ?? 0, recorded: { from }, from: [from], blockers },
    };
  }
  const refuse = (reason: string): MoveDecision => ({ action: "delete", verdict, reason });
  if (verdict === "forged")
    return refuse(`no leader removed the task from "${from}" in the transaction that wrote it`);
  if (!facts || facts.generatorError !== undefined)
    return refuse(`the generator failed: ${facts?.generatorError ?? "not called"}`);
  if (from === to) return refuse(`a move's old and new worker are the same ("${to}")`);
  if (facts.assignedTo.length > 0) return refuse(`the task is assigned to ${facts.assignedTo.join(", ")}`);
  const { generated } = facts;
  if (!generated) return refuse("the task is not generated now, or is quarantined");
  if (generated.exclude.includes(to)) return refuse(`the task's failures keep it off "${to}"`);
  const { target } = facts;
  if (!target) return refuse(`"${to}" is not registered`);
  if (target.mode === "drain") return refuse(`"${to}" is draining`);
  if (target.mode === "cordon") return refuse(`"${to}" is cordoned`);
  if (!eligibleOn(generated.task, target.labels))
    return refuse(`"${to}" does not match the task's selector or spread label`);
  if (facts.antiKeyWorkers.includes(to))
    return refuse(`"${to}" holds a task of the task's antiKey "${generated.task.antiKey ?? ""}"`);
  const elsewhere = [...new Set(facts.keyWorkers)].filter((worker) => worker !== to);
  if (elsewhere.length > 0)
    return refuse(`the task's key ${JSON.stringify(generated.task.key ?? "")} is on ${elsewhere.join(", ")}`);
  const owners = [...new Set([from, ...facts.reportedBy])].filter((worker) => worker !== to);
  return {
    action: "finish",
    put: {
      taskId,
      worker: to,
      key: keys.task(to, taskId),
      value: generated.value,
      priority: generated.priority,
      recorded: { from },
      from: owners,
      blockers: owners.map((worker) => keys.status(worker, taskId)),
    },
  };
}

/** The placeable generated tasks by id, as `decideMove` reads them. */
export function generatedTasks(escalated: Escalated): Map<string, GeneratedTask> {
  return new Map(
    escalated.plannable.map(({ task, value }) => [
      task.id,
      { value, priority: task.priority ?? 0, exclude: escalated.exclude.get(task.id) ?? [], task },
    ]),
  );
}
