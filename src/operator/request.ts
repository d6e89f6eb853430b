import { randomBytes } from "node:crypto";
import type { Etcd3 } from "etcd3";
import { EschedulerError } from "../errors.js";
import {
  keyLayout,
  readRecord,
  type ScheduleOutcome,
  type ScheduleRequestRecord,
  scheduleRequestRecordSchema,
  silentLogger,
  type TaskAction,
} from "../node/index.js";
import { PrefixWatcher } from "../watcher/index.js";
import { type ActorOptions, actorOf, auditOps } from "./audit.js";

export interface ScheduleRequestOptions extends ActorOptions {
  /** Lets this one schedule remove more than the leader's `--max-removal`. */
  allowRemoval?: boolean;
  /** How long to wait for the leader's answer; default 30 s. */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;
/** The request's lease outlives the wait by this much, so a crashed requester leaves nothing behind for long. */
const LEASE_SLACK_SECONDS = 5;

/**
 * Asks whichever master leads for one schedule through `/R/request/<id>` and resolves with its outcome
 * (applied, refused or failed). Throws ERR_NO_LEADER when no leader answers within the timeout. The
 * request lives under a lease of its own and is deleted once answered or given up.
 */
export function requestSchedule(
  client: Etcd3,
  root: string,
  options: ScheduleRequestOptions = {},
): Promise<ScheduleOutcome> {
  return sendRequest(client, root, options);
}

/**
 * Asks the leader for one schedule that carries out `action` (a per-task restart or move), through
 * `/R/request/<id>` like `requestSchedule`, and resolves with its outcome: refused with the reason when
 * the action cannot be done. Who and why go into the audit trail and the schedule's history reasons.
 */
export function requestTaskAction(
  client: Etcd3,
  root: string,
  action: TaskAction,
  options: Omit<ScheduleRequestOptions, "allowRemoval"> = {},
): Promise<ScheduleOutcome> {
  return sendRequest(client, root, options, action);
}

async function sendRequest(
  client: Etcd3,
  root: string,
  options: ScheduleRequestOptions,
  action?: TaskAction,
): Promise<ScheduleOutcome> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new EschedulerError("ERR_CONFIG", `schedule request timeout must be positive (got ${timeoutMs})`);
  }
  const keys = keyLayout(root);
  const key = keys.request(`${Date.now()}-${randomBytes(4).toString("hex")}`);
  const actor = actorOf(options);
  const record: ScheduleRequestRecord = {
    ...actor,
    allowRemoval: options.allowRemoval === true,
    ...(action ? { action } : {}),
    at: new Date().toISOString(),
  };
  const watcher = new PrefixWatcher(client, key);
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), timeoutMs);
  let leaseId: string | undefined;
  try {
    await watcher.start(stop.signal);
    const answers = watcher.changes();
    const lease = await client.leaseClient.leaseGrant({
      TTL: Math.ceil(timeoutMs / 1000) + LEASE_SLACK_SECONDS,
    });
    leaseId = lease.ID;
    await client.kv.txn({
      compare: [],
      success: [
        {
          request_put: { key: Buffer.from(key), value: Buffer.from(JSON.stringify(record)), lease: leaseId },
        },
        ...(await auditOps(client, keys, auditRecord(record, actor, action))),
      ],
      failure: [],
    });
    for await (const change of answers) {
      if (change.type !== "put" || change.key !== key) continue;
      const outcome = readRecord(scheduleRequestRecordSchema, key, change.value, silentLogger)?.outcome;
      if (outcome) return outcome;
    }
    throw new EschedulerError(
      "ERR_NO_LEADER",
      `no leader answered the ${action ? `task ${action.kind}` : "schedule"} request within ${timeoutMs}ms (is a master running under /${root}/?)`,
    );
  } finally {
    clearTimeout(timer);
    await watcher.close();
    if (leaseId !== undefined) {
      // Revoking the lease deletes the request, answered or not.
      await client.leaseClient.leaseRevoke({ ID: leaseId }).catch(() => undefined);
    }
  }
}

function auditRecord(
  record: ScheduleRequestRecord,
  actor: { by: string; reason?: string },
  action: TaskAction | undefined,
) {
  if (!action) return { at: record.at, action: "schedule", ...actor };
  const to = action.kind === "move" ? { to: action.to } : {};
  return { at: record.at, action: `task ${action.kind}`, task: action.task, ...to, ...actor };
}
