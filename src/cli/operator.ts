/** The operator's commands: pause, resume, cordon, drain, uncordon, release, schedule and history (etcd-level actions in src/operator). */
import type { Etcd3 } from "etcd3";
import ms from "ms";
import { z } from "zod";
import type { HistoryRecord } from "../node/index.js";
import { assertValidName, keyLayout, stderrLogger } from "../node/index.js";
import { auditLine, mergeHistory } from "./history-merge.js";
import {
  cordon,
  drain,
  type HistoryEntry,
  pause,
  readAudit,
  readHistory,
  release,
  requestSchedule,
  resume,
  uncordon,
  waitUntilDrained,
} from "../operator/index.js";
import { duration, parseConfig, sharedConfigSchema } from "./config.js";
import { connectEtcd } from "./connect.js";
import { EXIT_FAILURE, EXIT_OK } from "./errors.js";
import { printable } from "./printable.js";

type Options = Record<string, unknown>;

/** Opens etcd with the connection flags (after `check` validated the rest), runs `work`, closes. */
async function withEtcd<C extends { root: string }>(
  config: C & Parameters<typeof connectEtcd>[0],
  work: (client: Etcd3, config: C) => Promise<number>,
): Promise<number> {
  const client = await connectEtcd(config);
  try {
    return await work(client, config);
  } finally {
    client.close();
  }
}

const say = (line: string) => process.stdout.write(`${line}\n`);
/** With --json, the answer as one JSON document (the web console's admin actions answer the same); else a line (escaped: it may quote etcd). */
const answer = (json: boolean, value: unknown, line: string) =>
  say(json ? JSON.stringify(value, null, 2) : printable(line));

const json = z.boolean().default(false);
const withReason = sharedConfigSchema.extend({
  reason: z.string().optional(),
  as: z.string().optional(),
  json,
});
/** Who and why of an action, from --as and --reason. */
const actor = (config: { as?: string; reason?: string }) => ({ by: config.as, reason: config.reason });

export function runPause(options: Options): Promise<number> {
  const config = parseConfig(withReason, options);
  return withEtcd(config, async (client) => {
    const paused = await pause(client, config.root, actor(config));
    const why = config.reason ? ` (${config.reason})` : "";
    answer(
      config.json,
      { paused },
      `schedules paused${why}: the leader writes nothing until "escheduler resume"`,
    );
    return EXIT_OK;
  });
}

export function runResume(options: Options): Promise<number> {
  const config = parseConfig(withReason, options);
  return withEtcd(config, async (client) => {
    const resumed = await resume(client, config.root, actor(config));
    const line = resumed ? "schedules resumed: the leader schedules once now" : "schedules were not paused";
    answer(config.json, { resumed }, line);
    return EXIT_OK;
  });
}

export function runCordon(options: Options, worker: string): Promise<number> {
  assertValidName("worker name", worker);
  const config = parseConfig(withReason, options);
  return withEtcd(config, async (client) => {
    const cordoned = await cordon(client, config.root, worker, actor(config));
    answer(config.json, { cordoned }, `worker ${worker} cordoned: it keeps its tasks and takes nothing new`);
    return EXIT_OK;
  });
}

const drainSchema = withReason.extend({
  wait: z.boolean().default(false),
  timeout: duration.default(120_000),
});

/** With --wait: exit 0 once the worker holds nothing, 1 when it still holds tasks after --timeout. */
export function runDrain(options: Options, worker: string): Promise<number> {
  assertValidName("worker name", worker);
  const config = parseConfig(drainSchema, options);
  return withEtcd(config, async (client) => {
    const draining = await drain(client, config.root, worker, actor(config));
    if (!config.wait) {
      const line = `worker ${worker} draining: its tasks are handed off; it stays registered and takes nothing new`;
      answer(config.json, { draining }, line);
      return EXIT_OK;
    }
    const waited = await waitUntilDrained(client, config.root, worker, { timeoutMs: config.timeout });
    const line = waited.drained
      ? `worker ${worker} drained: it holds no task`
      : `worker ${worker} still holds ${waited.holding} tasks after ${ms(config.timeout)}`;
    answer(config.json, { draining, ...waited }, line);
    return waited.drained ? EXIT_OK : EXIT_FAILURE;
  });
}

export function runUncordon(options: Options, worker: string): Promise<number> {
  assertValidName("worker name", worker);
  const config = parseConfig(withReason, options);
  return withEtcd(config, async (client) => {
    const removed = await uncordon(client, config.root, worker, actor(config));
    const line = removed
      ? `worker ${worker} uncordoned (was ${removed.mode})`
      : `worker ${worker} was not cordoned`;
    answer(config.json, { removed: removed ?? null }, line);
    return EXIT_OK;
  });
}

/** Exit 0 whether or not something was held (the line says which); 2 for a bad name. */
export function runRelease(options: Options, worker: string): Promise<number> {
  assertValidName("worker name", worker);
  const config = parseConfig(withReason, options);
  return withEtcd(config, async (client) => {
    const result = await release(client, config.root, worker, actor(config));
    const line = result.released
      ? `released the tasks held for ${worker} (until ${result.held?.until}): the leader moves them now`
      : `nothing is held for ${worker}`;
    answer(config.json, result, line);
    return EXIT_OK;
  });
}

/** Exit 0 applied; 1 refused or failed (the reason on stdout); 2 bad input or no leader within --timeout. */
export function runSchedule(options: Options): Promise<number> {
  const config = parseConfig(
    sharedConfigSchema.extend({
      reason: z.string().optional(),
      as: z.string().optional(),
      allowRemoval: z.boolean().default(false),
      timeout: duration.default(30_000),
      json,
    }),
    options,
  );
  return withEtcd(config, async (client) => {
    const outcome = await requestSchedule(client, config.root, {
      ...actor(config),
      allowRemoval: config.allowRemoval,
      timeoutMs: config.timeout,
    });
    const by = outcome.leader ? ` by ${outcome.leader} (epoch ${outcome.epoch})` : "";
    answer(
      config.json,
      outcome,
      outcome.state === "applied"
        ? `schedule applied${by}`
        : `schedule ${outcome.state}${by}: ${outcome.reason ?? "no reason given"}`,
    );
    return outcome.state === "applied" ? EXIT_OK : EXIT_FAILURE;
  });
}

export function runHistory(options: Options): Promise<number> {
  const config = parseConfig(
    sharedConfigSchema.extend({
      limit: z.coerce.number().int().positive().default(20),
      json: z.boolean().default(false),
      task: z.string().optional(),
    }),
    options,
  );
  if (config.task !== undefined) assertValidName("task id", config.task);
  return withEtcd(config, async (client) => {
    const options = { limit: config.limit, task: config.task, logger: stderrLogger(config.logLevel) };
    const [schedules, actions] = await Promise.all([
      readHistory(client, config.root, options),
      readAudit(client, keyLayout(config.root), options),
    ]);
    const entries = mergeHistory(schedules, actions, config.limit);
    if (config.json) say(JSON.stringify(entries, null, 2));
    else
      for (const entry of entries)
        say(printable(entry.kind === "action" ? auditLine(entry) : historyLine(entry, config.task)));
    return EXIT_OK;
  });
}

/** One schedule per line: time, outcome, leader/epoch, why, counts; with --task, that task's from → to. */
export function historyLine(entry: HistoryEntry, task?: string): string {
  const counts = `${entry.tasks} tasks on ${entry.workers.length} workers, +${entry.added} -${entry.removed} moved ${entry.moved}`;
  const parts = [
    entry.at,
    entry.outcome.padEnd(7),
    `${entry.leader}#${entry.epoch}`,
    `[${entry.reasons.join(",")}]`,
    counts,
  ];
  const kinds = Object.entries(entry.unassignedReasons ?? {});
  if (kinds.length > 0) parts.push(`unassigned ${kinds.map(([kind, n]) => `${kind} ${n}`).join(", ")}`);
  if (entry.refusal) parts.push(`refused: ${entry.refusal}`);
  if (task !== undefined) parts.push(moveOf(entry, task));
  return parts.join("  ");
}

function moveOf(entry: HistoryRecord, task: string): string {
  const move = entry.moves.find((m) => m.id === task);
  const waiting = entry.unassignedTasks?.find((t) => t.id === task);
  if (!move) return waiting ? `${task}: unassigned (${waiting.text})` : "";
  const why = move.why === undefined ? "" : ` (${move.why})`;
  return `${task}: ${move.from ?? "(new)"} → ${move.to ?? "(stopped)"}${why}`;
}
