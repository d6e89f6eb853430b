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
} from "../node/index.js";
import { PrefixWatcher } from "../watcher/index.js";

export interface ScheduleRequestOptions {
  reason?: string;
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
export async function requestSchedule(
  client: Etcd3,
  root: string,
  options: ScheduleRequestOptions = {},
): Promise<ScheduleOutcome> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new EschedulerError("ERR_CONFIG", `schedule request timeout must be positive (got ${timeoutMs})`);
  }
  const key = keyLayout(root).request(`${Date.now()}-${randomBytes(4).toString("hex")}`);
  const record: ScheduleRequestRecord = {
    ...(options.reason ? { reason: options.reason } : {}),
    allowRemoval: options.allowRemoval === true,
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
    await client.kv.put({
      key: Buffer.from(key),
      value: Buffer.from(JSON.stringify(record)),
      lease: leaseId,
    });
    for await (const change of answers) {
      if (change.type !== "put" || change.key !== key) continue;
      const outcome = readRecord(scheduleRequestRecordSchema, key, change.value, silentLogger)?.outcome;
      if (outcome) return outcome;
    }
    throw new EschedulerError(
      "ERR_NO_LEADER",
      `no leader answered the schedule request within ${timeoutMs}ms (is a master running under /${root}/?)`,
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
