import type { Etcd3 } from "etcd3";
import { EschedulerError } from "../errors.js";
import {
  DEFAULTS as NODE_DEFAULTS,
  nodeClient,
  defaultNodeName,
  type EtcdConnectionConfig,
  type KeyLayout,
  EtcdWaitLog,
  isRetryableAtStartup,
  keyLayout,
  type Logger,
  nodeLogger,
} from "../node/index.js";
import { delay, exponentialBackoff, SafeEmitter } from "../runtime/index.js";
import { campaign, type Leadership } from "./campaign.js";
import type { MasterEvents } from "./events.js";
import { type Generator, loadGenerator } from "./generator.js";
import { type MaxMoving, parseMaxMoving } from "./pacing.js";
import type { ScheduleResult } from "./schedule.js";
import { LeaderTerm, type TermContext, type TermSettings } from "./term.js";

export interface MasterOptions extends Partial<EtcdConnectionConfig> {
  /** An etcd client to use (not closed by `stop()`); otherwise one is created from `etcd` and the TLS/auth fields. */
  client?: Etcd3;
  /** Key prefix of the cluster; default "escheduler". */
  root?: string;
  /** Defaults to `<ip>-<pid>`. */
  name?: string;
  /** Campaign lease time-to-live; default 10 s. */
  ttlMs?: number;
  /** Workers to gather in the first-start barrier (0: no gathering); default 0. */
  expectedWorkers?: number;
  /** Periodic schedule; default 60 s. */
  intervalMs?: number;
  /** Quiet time after a change under `/R/worker/` before scheduling; default 5 s. */
  rebalanceWaitMs?: number;
  /** Generator deadline; default 30 s. */
  timeoutMs?: number;
  /** How long the first-start gathering waits for the expected workers; default 5 min. */
  barrierTimeoutMs?: number;
  /** `wait` (default): a moved task is written to its new worker only once the old one has stopped it. */
  handoff?: "wait" | "immediate";
  /**
   * With `handoff: "wait"`, how many tasks may be between owners at once: a count, or a percentage of the
   * generated tasks (`"10%"`, the default); the rest of a rebalance follows as hand-offs complete.
   */
  maxMoving?: MaxMoving;
  /** Refuse a schedule that would stop more than this percent of the assigned tasks because the generator dropped them; default 50 (100: never). */
  maxRemovalPercent?: number;
  /**
   * Failure escalation: a task that fails this many times on one worker within `restartWindowMs` moves
   * to a worker it has not failed on; default 0 (restart on the same worker forever).
   */
  restartLimit?: number;
  /** The window the restart limit counts failures in; default 5 min. */
  restartWindowMs?: number;
  /** Quarantine a task once it reached its restart limit on this many distinct workers; default 3 (0: never). */
  quarantineAfter?: number;
  /**
   * Cordon a worker automatically (reason `auto: …`) once this many distinct tasks reached their
   * restart limit there and run on other workers; default 0 (never). An operator's `uncordon` lifts it.
   */
  autoCordonAfter?: number;
  /**
   * How long the tasks of a worker whose lease expired (a crash, not a stop) stay assigned to it, for a
   * worker of the same name to take back; default 0 (they move at once). A task's `maxDowntime` below it skips the wait.
   */
  reassignDelayMs?: number;
  /** The generator, or the path of a module that default-exports one. */
  generator: Generator | string;
  logger?: Logger;
  version?: string;
}

type Settings = TermSettings & { ttlMs: number };

const DEFAULTS: Settings = {
  ttlMs: NODE_DEFAULTS.ttlMs,
  expectedWorkers: NODE_DEFAULTS.expectedWorkers,
  intervalMs: NODE_DEFAULTS.intervalMs,
  rebalanceWaitMs: NODE_DEFAULTS.rebalanceWaitMs,
  timeoutMs: NODE_DEFAULTS.timeoutMs,
  barrierTimeoutMs: NODE_DEFAULTS.barrierTimeoutMs,
  handoff: NODE_DEFAULTS.handoff,
  maxMoving: NODE_DEFAULTS.maxMoving,
  maxRemovalPercent: NODE_DEFAULTS.maxRemovalPercent,
  restartLimit: NODE_DEFAULTS.restartLimit,
  restartWindowMs: NODE_DEFAULTS.restartWindowMs,
  quarantineAfter: NODE_DEFAULTS.quarantineAfter,
  autoCordonAfter: NODE_DEFAULTS.autoCordonAfter,
  reassignDelayMs: NODE_DEFAULTS.reassignDelayMs,
};

/** The leadership this master holds and what it runs with it. */
interface Term {
  leadership: Leadership;
  term: LeaderTerm;
}

/**
 * The master: campaigns for leadership and, while it leads, schedules on every trigger (first start,
 * worker changes, interval, `scheduleNow`) with every write fenced by its election key.
 */
export class Master extends SafeEmitter<MasterEvents> {
  readonly name: string;
  readonly keys: KeyLayout;
  private readonly settings: Settings;
  private readonly logger: Logger;
  private readonly stopping = new AbortController();
  private readonly client: Etcd3;
  private readonly ownsClient: boolean;
  private generator?: Generator;
  private term?: Term;
  private started?: Promise<void>;
  private campaigning?: Promise<void>;
  private stopped?: Promise<void>;

  constructor(private readonly options: MasterOptions) {
    super();
    this.keys = keyLayout(options.root ?? NODE_DEFAULTS.root);
    this.name = options.name ?? defaultNodeName();
    this.settings = { ...DEFAULTS, ...definedOnly(options) };
    validateSettings(this.settings);
    this.logger = nodeLogger(options.logger, "master", this.name);
    this.listenerErrorLog = this.logger;
    ({ client: this.client, owned: this.ownsClient } = nodeClient("master", options));
  }

  get isLeader(): boolean {
    return this.term !== undefined && !this.term.leadership.signal.aborted;
  }

  /**
   * Loads the generator and joins the election; resolves once this master is a candidate (leader or
   * standby), waiting while etcd cannot serve; rejects on credentials, permissions or TLS refused.
   */
  start(): Promise<void> {
    this.started ??= (async () => {
      this.generator = await loadGenerator(this.options.generator);
      let candidate!: () => void;
      let failed!: (error: unknown) => void;
      const isCandidate = new Promise<void>((resolve, reject) => {
        candidate = resolve;
        failed = reject;
      });
      this.campaigning = this.campaignLoop(this.client, candidate, failed);
      await isCandidate;
    })();
    return this.started;
  }

  /** Stops scheduling and resigns, so a standby is elected at once. Idempotent. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.stopping.abort(new EschedulerError("ERR_ABORTED", `master ${this.name} stopped`));
      await this.started?.catch(() => undefined);
      await this.campaigning;
      if (this.ownsClient) this.client.close();
      this.logger.info("master stopped");
    })();
    return this.stopped;
  }

  /**
   * Schedules as soon as possible (after the running schedule, if any). Resolves with that schedule's
   * figures, or undefined when this master is not leading; rejects when the schedule fails.
   */
  scheduleNow(reason = "requested"): Promise<ScheduleResult | undefined> {
    if (!this.isLeader || !this.term) return Promise.resolve(undefined);
    return this.term.term.scheduleNow(reason);
  }

  private async campaignLoop(
    client: Etcd3,
    candidate: () => void,
    failed: (error: unknown) => void,
  ): Promise<void> {
    const backoff = exponentialBackoff({ initialMs: 200, maxMs: 5_000 });
    const firstCampaign = new EtcdWaitLog(this.logger, "campaign");
    let everCandidate = false;
    while (!this.stopping.signal.aborted) {
      let leadership: Leadership;
      try {
        leadership = await campaign({
          client,
          keys: this.keys,
          name: this.name,
          ttlMs: this.settings.ttlMs,
          logger: this.logger,
          signal: this.stopping.signal,
          onCandidate: (key) => {
            everCandidate = true;
            firstCampaign.over();
            this.logger.info({ electionKey: key, version: this.options.version }, "campaigning");
            candidate();
          },
        });
      } catch (error) {
        if (this.stopping.signal.aborted) break;
        // Before the first candidacy, etcd without a leader (or slow) is waited for, like the start-up's
        // first read; credentials, permissions or TLS refused (or a bug) end start().
        if (!everCandidate && !isRetryableAtStartup(error)) {
          failed(error);
          return;
        }
        if (everCandidate) this.logger.warn({ err: error }, "campaign failed; campaigning again");
        else firstCampaign.failed(error);
        await delay(backoff.next(), this.stopping.signal).catch(() => undefined);
        continue;
      }
      backoff.reset();
      await this.lead(client, leadership);
    }
    // Stopped before ever becoming a candidate: start() must not wait forever.
    if (!everCandidate) failed(this.stopping.signal.reason);
  }

  /** Runs one leadership term until it ends; resigns on stop. */
  private async lead(client: Etcd3, leadership: Leadership): Promise<void> {
    const { signal, epoch } = leadership;
    const logger = this.logger.child({ epoch });
    const term = new LeaderTerm({
      client,
      keys: this.keys,
      name: this.name,
      leadership,
      generator: this.generator as Generator,
      settings: this.settings,
      logger,
      emit: this.emit.bind(this) as TermContext["emit"],
    });
    this.term = { leadership, term };
    logger.info({ electionKey: leadership.key }, "elected leader");
    this.emit("elected", { epoch, electionKey: leadership.key });
    try {
      await term.run();
    } catch (error) {
      if (!signal.aborted) {
        logger.error({ err: error }, "leadership failed; resigning");
        this.emit("error", error as Error);
        leadership.depose(error as Error);
      }
    } finally {
      // Leadership is over the moment the signal fired: say so before the (possibly slow) clean-up.
      this.term = undefined;
      const resigned = this.stopping.signal.aborted ? leadership.resign() : undefined;
      if (!resigned) {
        const reason = (signal.reason as Error | undefined)?.message ?? "leadership ended";
        leadership.depose(signal.reason as Error);
        logger.warn({ reason }, "deposed; campaigning again");
        this.emit("deposed", { epoch, reason });
      }
      await term.close();
      if (resigned) {
        await resigned;
        logger.info("resigned leadership");
      }
    }
  }
}

function definedOnly(options: MasterOptions): Partial<Settings> {
  const settings: Partial<Settings> = {};
  for (const field of Object.keys(DEFAULTS) as Array<keyof Settings>) {
    if (options[field] !== undefined) (settings as Record<string, unknown>)[field] = options[field];
  }
  return settings;
}

function validateSettings(settings: Settings): void {
  const positive: Array<keyof Settings> = ["ttlMs", "intervalMs", "timeoutMs"];
  for (const field of positive) {
    const value = settings[field];
    if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
      throw new EschedulerError(
        "ERR_CONFIG",
        `master option ${field} must be a positive number (got ${value})`,
      );
    }
  }
  for (const field of ["restartLimit", "quarantineAfter", "autoCordonAfter"] as const) {
    const value = settings[field];
    if (!Number.isInteger(value) || value < 0) {
      throw new EschedulerError(
        "ERR_CONFIG",
        `master option ${field} must be a whole number ≥ 0 (got ${value})`,
      );
    }
  }
  if (!Number.isFinite(settings.restartWindowMs) || settings.restartWindowMs <= 0) {
    throw new EschedulerError(
      "ERR_CONFIG",
      `master option restartWindowMs must be a positive number (got ${settings.restartWindowMs})`,
    );
  }
  for (const field of [
    "expectedWorkers",
    "rebalanceWaitMs",
    "barrierTimeoutMs",
    "reassignDelayMs",
  ] as const) {
    const value = settings[field] ?? 0;
    if (!Number.isFinite(value) || value < 0) {
      throw new EschedulerError("ERR_CONFIG", `master option ${field} must be zero or more (got ${value})`);
    }
  }
  const { maxRemovalPercent } = settings;
  if (!Number.isFinite(maxRemovalPercent) || maxRemovalPercent < 0 || maxRemovalPercent > 100) {
    throw new EschedulerError(
      "ERR_CONFIG",
      `master option maxRemovalPercent must be between 0 and 100 (got ${maxRemovalPercent})`,
    );
  }
  if (settings.handoff !== "wait" && settings.handoff !== "immediate") {
    throw new EschedulerError(
      "ERR_CONFIG",
      `master option handoff must be "wait" or "immediate" (got ${settings.handoff})`,
    );
  }
  parseMaxMoving(settings.maxMoving);
}
