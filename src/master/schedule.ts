import type { Etcd3 } from "etcd3";
import { type Plan, plan, type ReasonKind } from "../balancer/index.js";
import { type KeyLayout, type Logger, type HistoryRecord, type PlanRecord } from "../node/index.js";
import type { WriteOp } from "./batches.js";
import type { RegisteredWorker } from "./registered.js";
import { type AssignmentRead, readAssignment } from "./read-assignment.js";
import { generationOrder } from "./rollout.js";
import {
  type CurrentAssignment,
  ownersOf,
  type ScheduleChanges,
  scheduleChanges,
  type TaskOwners,
} from "./changes.js";
import { EschedulerError } from "../errors.js";
import { type Controls, cordonCounts, pausedError } from "./controls.js";
import type { LeaderWriter } from "./fencing.js";
import { type Generator, generateTasks } from "./generator.js";
import { removalCheck } from "./guard.js";
import type { HandoffGate } from "./handoff.js";
import type { MoveRecord } from "./move-record.js";
import { historyPut, historyRecord, historyTrims, historyWrites } from "./history.js";
import { type MaxMoving, type MovePacer, maxMovingLimit, splitMoves } from "./pacing.js";
import { type TaskLookup, taskLookup, type ValidTask } from "./validation.js";
import { writeTaskChanges } from "./schedule-writes.js";
import { escalate, type FailureInputs, withQuarantined } from "./escalation-input.js";
import * as holding from "./held-tasks.js";
import type { HoldTimer } from "./hold-timer.js";
// The leader's hold timer goes into the schedule's context: its term gets it from here.
export { type HoldSettings, HoldTimer } from "./hold-timer.js";
import { PLAN_UNASSIGNED_LIMIT, unassignedSummary } from "./unassigned.js";
import { type IgnoredPin, plannerInput } from "./pins.js";
import type { TaskActionBatch } from "./task-actions.js";

/** Figures of one applied schedule (the `scheduled` event). */
export interface ScheduleResult extends holding.HoldFigures {
  epoch: number;
  /** What asked for this schedule (coalesced triggers). */
  reasons: string[];
  workers: number;
  tasks: number;
  added: number;
  updated: number;
  removed: number;
  moved: number;
  unassigned: number;
  /** Unassigned tasks per reason kind (only kinds with some). */
  unassignedReasons: Partial<Record<ReasonKind, number>>;
  /** Registered workers planned as cordoned (keep, take nothing new) and as draining (handed off). */
  cordoned: number;
  draining: number;
  /** Puts still waiting for the old owner to stop the task when the schedule finished. */
  handoffs: number;
  /** Moves not started yet when the schedule finished (`--max-moving`); they follow as hand-offs complete. */
  queuedMoves: number;
  durationMs: number;
  generateMs: number;
  readMs: number;
  planMs: number;
  applyMs: number;
  /** Revision of the `/R/plan` write. */
  revision: number;
  /** Revision the workers and the assignment were read at: the plan covers every change up to it. */
  readRevision: number;
  /** Where they were read: the leader's view, or etcd (a view that did not reach the schedule's mark in time). */
  readSource: "view" | "etcd";
}

/** What a schedule needs to compute its plan; writing needs the rest of `ScheduleContext`. */
export interface PreviewContext {
  client: Etcd3;
  keys: KeyLayout;
  generator: Generator;
  timeoutMs: number;
  /** Chooses which tasks move by how often they moved before (absent: the plan as it is). */
  moves?: MoveRecord;
  /** Worker → when it registered (a revision; higher is younger); used with `moves`. */
  joinedAt?: () => ReadonlyMap<string, number>;
  /** `--reassign-delay`: how long new holds last, and when to schedule again (absent: no new hold; recorded holds still count). */
  holds?: Pick<HoldTimer, "delayMs" | "arm">;
  /** The read of workers, assignment and controls (the leader's: from its view); absent: read from etcd. */
  readAssignment?: () => Promise<AssignmentRead>;
  /** Live worker names for the generator (the authoritative list is read with the assignment). */
  liveWorkers: () => string[];
  /** Operator's per-task actions this schedule carries out (`escheduler task restart|move`). */
  actions?: TaskActionBatch;
  /** The failure escalation (absent: tasks restart where they are, as written). */
  failures?: FailureInputs;
  logger: Logger;
  signal: AbortSignal;
}

export interface ScheduleContext extends PreviewContext {
  /** This master's name, recorded as the plan's leader. */
  leader: string;
  epoch: number;
  writer: LeaderWriter;
  /** Present with `--handoff wait`. */
  handoffs?: HandoffGate;
  /** Present with `--handoff wait`: paces moves between live workers. */
  pacer?: MovePacer;
  maxMoving: MaxMoving;
  /** The removal guard's limit in percent (100: off). */
  maxRemovalPercent: number;
  /** The operator allowed this one schedule to remove more than the limit. */
  allowRemoval?: boolean;
}

/** Everything a schedule decides before it writes: what `escheduler plan` prints. */
export interface SchedulePreview {
  tasks: ValidTask[];
  /** Every registered worker, cordoned and draining ones included. */
  workers: RegisteredWorker[];
  controls: Controls;
  current: CurrentAssignment;
  /** The schedule's indexes, built once: generated task id → task, and current task id → owner (`ownersOf`). */
  byId: TaskLookup;
  owners: TaskOwners;
  /** Undefined when no worker may take tasks. */
  target?: Plan;
  changes: ScheduleChanges;
  /** Pins the plan does not follow, with why. */
  ignoredPins: IgnoredPin[];
  /** The crashed workers' tasks kept for them, and the hold records to write. */
  holds: holding.HoldDecision;
  /** Deletes of task keys that are not valid UTF-8 (written by hand; no task id names them). */
  junk: WriteOp[];
  /** The revision the workers, assignment and controls were read at. */
  revision: number;
  readSource: "view" | "etcd";
  /** Task id → where it failed, for the history of its move. */
  why: ReadonlyMap<string, string>;
  generateMs: number;
  readMs: number;
  planMs: number;
}

/**
 * Generates and validates the tasks, reads workers, assignment, cordons and the pause at one revision,
 * and plans: exactly what a schedule would write, without writing. `beforeRead` runs between the
 * generator and the read (the leader cancels held hand-offs there).
 */
export async function previewSchedule(
  context: PreviewContext,
  beforeRead?: () => Promise<void>,
): Promise<SchedulePreview> {
  const { keys, signal } = context;
  const startedAt = performance.now();
  const generated = await generateTasks(context.generator, {
    workers: context.liveWorkers(),
    logger: context.logger,
    signal,
    timeoutMs: context.timeoutMs,
  });
  const generatedAt = performance.now();
  signal.throwIfAborted();
  await beforeRead?.();
  const { workers, current, controls, junk, revision, source } = await (context.readAssignment?.() ??
    readAssignment(context.client, keys, context.logger));
  const readAt = performance.now();
  signal.throwIfAborted();

  const escalated = escalate(generated.tasks, context.failures, Date.now(), generated.positions);
  const { tasks } = escalated;
  // The escalation keeps each task's place: validation's index of the generated ids finds it.
  const byId = taskLookup(tasks, generated.positions);
  const pinned = plannerInput(escalated.plannable, workers, current, controls, context.actions);
  const { ignoredPins } = pinned;
  const input = { ...pinned.input, generations: generationOrder(workers), exclude: escalated.exclude };
  context.moves?.observe(input.current);
  const holds = holding.scheduleHolds({ workers, current, tasks, controls }, context.holds?.delayMs ?? 0);
  const owners = ownersOf(current, byId);
  // The planner's current lists are the read's unless a restart adds to them or a hold takes from them:
  // then the read's owners are its owners. Its tasks are the generated ones, less any quarantined.
  const sameLists = (context.actions?.restarting.size ?? 0) === 0 && holds.holds.size === 0;
  const known = { positions: generated.positions, ...(sameLists ? { owners } : {}) };
  let target = holding.planAroundHolds(input, holds, (free) => {
    const planned = free.workers.length === 0 ? undefined : plan(free);
    if (!planned || !context.moves) return planned;
    return context.moves.settle(planned, free, context.joinedAt?.() ?? new Map(), known);
  });
  target = context.actions?.adjustPlan(target, { current, byId, workers, controls }) ?? target;
  if (target) target = withQuarantined(target, escalated.quarantined);
  const changes = scheduleChanges(keys, target, byId, current);
  return {
    tasks,
    workers,
    controls,
    current,
    byId,
    owners,
    target,
    changes,
    ignoredPins,
    holds,
    junk,
    revision,
    readSource: source ?? "etcd",
    why: escalated.why,
    generateMs: Math.round(generatedAt - startedAt),
    readMs: Math.round(readAt - generatedAt),
    planMs: Math.round(performance.now() - readAt),
  };
}

/**
 * One schedule: preview it (nothing is written if the generator fails), refuse it while paused or when
 * the removal guard says so, then write removals, additions in priority order, and `/R/plan` with its
 * history record — all fenced, and refused by etcd once schedules are paused. A refusal by the guard
 * writes only its history record. Moves begun earlier (held hand-offs) always finish: an applied
 * schedule re-targets them, any other outcome leaves them as they were.
 */
export async function runSchedule(context: ScheduleContext, reasons: string[]): Promise<ScheduleResult> {
  const startedAt = performance.now();
  try {
    // Queued moves not begun are decided again from what etcd says now; moves begun stay held, and the
    // gate writes none of them until this schedule has decided (so its read and its writes agree).
    const preview = await previewSchedule(context, async () => {
      await context.pacer?.cancelPending();
      await context.handoffs?.freeze();
    });
    return await applySchedule(context, reasons, preview, startedAt);
  } finally {
    context.handoffs?.thaw();
  }
}

async function applySchedule(
  context: ScheduleContext,
  reasons: string[],
  preview: SchedulePreview,
  startedAt: number,
): Promise<ScheduleResult> {
  const { keys, signal, writer } = context;
  const { tasks, workers, controls, current, target, changes, revision } = preview;
  // The generated ids matter to the summaries only when nothing was planned (no worker may take tasks).
  const taskIds = target ? [] : tasks.map((valid) => valid.task.id);
  const plannedAt = performance.now();
  signal.throwIfAborted();
  if (controls.paused) {
    throw pausedError(controls.paused);
  }
  const history = (outcome: HistoryRecord["outcome"], refusal?: string) =>
    historyRecord({
      leader: context.leader,
      epoch: context.epoch,
      reasons,
      outcome,
      refusal,
      workers: workers.map((worker) => worker.name),
      tasks: tasks.length,
      taskIds,
      current,
      owners: preview.owners,
      target,
      why: preview.why,
    });
  const guard = removalCheck(
    preview.owners,
    preview.byId,
    context.maxRemovalPercent,
    context.allowRemoval === true,
    context.handoffs?.held().keys(),
  );
  if (guard.refusal) {
    const refused = history("refused", guard.refusal);
    await writer.commit(await historyWrites(context.client, keys, revision, refused), { unlessPaused: true });
    throw new EschedulerError("ERR_REMOVAL_GUARD", guard.refusal);
  }

  // Moves between live workers are paced; a gone worker's tasks run nowhere already and go at once.
  const live = new Set(workers.map((worker) => worker.name));
  const { moves, removals, puts } = context.pacer
    ? splitMoves(keys, changes, live)
    : { moves: [], removals: changes.removals, puts: changes.puts };
  // Only the leader writes history: its trims are read while the task writes are in flight, not after them
  // (awaited once they are written; a schedule stopped before then never needs them).
  const trims = historyTrims(context.client, keys, revision);
  trims.catch(() => undefined);
  // Batched (as every write that grows with the fleet): a crash of many workers records many holds.
  await writer.apply(holding.newHoldWrites(keys, preview.holds), { signal, unlessPaused: true });
  const replanned = await writeTaskChanges(context, [...preview.junk, ...removals], puts, live);
  // A begun move whose task is still generated but that this plan places nowhere (no eligible worker in
  // its read, e.g. a new leader's first view) keeps its target: only a task no longer generated drops it.
  for (const [taskId, put] of replanned) if (!put && preview.byId.has(taskId)) replanned.delete(taskId);
  await context.actions?.restart(context, tasks);
  await context.pacer?.pace(moves, maxMovingLimit(context.maxMoving, tasks.length), signal);
  await writer.apply(context.handoffs?.recordChanges(replanned) ?? [], { signal, unlessPaused: true });
  const record: PlanRecord = {
    epoch: context.epoch,
    leader: context.leader,
    at: new Date().toISOString(),
    workers: workers.map((worker) => worker.name),
    tasks: tasks.length,
    moved: changes.moved,
    ...unassignedSummary(target, taskIds, PLAN_UNASSIGNED_LIMIT),
    ...(context.failures ? { restart: context.failures.defaults } : {}),
    ...(preview.ignoredPins.length > 0 ? { ignoredPins: preview.ignoredPins } : {}),
  };
  await writer.apply(holding.endedHoldWrites(keys, preview.holds), { signal, unlessPaused: true });
  const historyOps = [...(await trims), historyPut(keys, revision, history("applied"))];
  signal.throwIfAborted();
  const planRevision = await writer.commit(
    [{ type: "put", key: keys.plan, value: JSON.stringify(record) }, ...historyOps],
    { unlessPaused: true },
  );
  context.holds?.arm(preview.holds.nextEndMs);
  context.handoffs?.replan(replanned);
  const appliedAt = performance.now();

  return {
    epoch: context.epoch,
    reasons,
    workers: workers.length,
    tasks: tasks.length,
    added: changes.added,
    updated: changes.updated,
    removed: changes.removed,
    moved: changes.moved,
    unassigned: target ? target.unassigned.length : tasks.length,
    unassignedReasons: record.unassignedReasons ?? {},
    ...holding.holdFigures(preview.holds),
    ...cordonCounts(workers, controls),
    handoffs: context.handoffs?.pending ?? 0,
    queuedMoves: context.pacer?.queued ?? 0,
    durationMs: Math.round(appliedAt - startedAt),
    generateMs: preview.generateMs,
    readMs: preview.readMs,
    planMs: preview.planMs,
    applyMs: Math.round(appliedAt - plannedAt),
    revision: planRevision,
    readRevision: revision,
    readSource: preview.readSource,
  };
}
