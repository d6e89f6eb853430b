import type { Etcd3 } from "etcd3";
import { firstLine, isEschedulerError } from "../errors.js";
import type {
  Logger,
  PausedRecord,
  ScheduleOutcome,
  ScheduleRequestRecord,
  TaskAction,
} from "../node/index.js";
import type { ActionOutcome } from "./task-actions.js";
import type { ScheduleResult } from "./schedule.js";
import { pausedError } from "./controls.js";

/**
 * Stores `outcome` in the request, keeping the requester's lease; writes nothing when the requester
 * already gave up (the key is gone).
 */
export async function answerScheduleRequest(
  client: Etcd3,
  key: string,
  request: ScheduleRequestRecord,
  outcome: ScheduleOutcome,
): Promise<void> {
  await client
    .if(key, "Version", ">", 0)
    .then(
      client
        .put(key)
        .value(JSON.stringify({ ...request, outcome }))
        .ignoreLease(),
    )
    .commit();
}

export interface RequestDesk {
  client: Etcd3;
  leader: string;
  epoch: number;
  logger: Logger;
  /** The pause record while schedules are paused. */
  paused(): PausedRecord | undefined;
  /** Lets the next schedule pass the removal guard. */
  allowRemovalOnce(): void;
  /** Runs a schedule after the current one; undefined when the leadership ended first. */
  schedule(reason: string): Promise<ScheduleResult | undefined>;
  /** Queues a per-task action for the next schedule (and asks for it); resolves with its outcome. */
  taskAction(action: TaskAction, actor: { by?: string; reason?: string }): Promise<ActionOutcome>;
}

/**
 * Answers one `escheduler schedule` request: refused at once while paused; otherwise one schedule runs
 * (coalesced with other triggers) and its outcome is stored. A request outliving the leadership stays
 * unanswered for the next leader.
 */
export async function answerRequest(
  desk: RequestDesk,
  key: string,
  request: ScheduleRequestRecord,
): Promise<void> {
  const { leader, epoch } = desk;
  const answer = (outcome: Omit<ScheduleOutcome, "leader" | "epoch">) =>
    answerScheduleRequest(desk.client, key, request, { ...outcome, leader, epoch });
  const paused = desk.paused();
  desk.logger.info(
    {
      request: key,
      by: request.by,
      reason: request.reason,
      allowRemoval: request.allowRemoval,
      action: request.action,
    },
    request.action ? "task action requested" : "schedule requested",
  );
  try {
    if (paused) {
      await answer({
        state: "refused",
        reason: `schedules are paused${paused.reason ? ` (${paused.reason})` : ""}`,
      });
      return;
    }
    if (request.action) {
      await answer(await desk.taskAction(request.action, request));
      return;
    }
    if (request.allowRemoval) desk.allowRemovalOnce();
    let outcome: Omit<ScheduleOutcome, "leader" | "epoch">;
    try {
      const result = await desk.schedule(requestReason(request));
      if (!result) return;
      outcome = { state: "applied" };
    } catch (error) {
      const refused =
        isEschedulerError(error) && (error.code === "ERR_REMOVAL_GUARD" || error.code === "ERR_PAUSED");
      outcome = { state: refused ? "refused" : "failed", reason: firstLine(error) };
    }
    await answer(outcome);
  } catch (error) {
    desk.logger.warn({ err: error, request: key }, "answering a schedule request failed");
  }
}

/** The history reason of a schedule request: "request by alice@ops: incident 4711". */
function requestReason(request: ScheduleRequestRecord): string {
  const who = request.by ? ` by ${request.by}` : "";
  return `request${who}${request.reason ? `: ${request.reason}` : ""}`;
}
