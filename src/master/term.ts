import type { Etcd3 } from "etcd3";
import { gatheringBarrier, isBarrierLeft, markBarrierLeft } from "../barrier/index.js";
import { EschedulerError, isEschedulerError } from "../errors.js";
import { type KeyLayout, type Logger, type PausedRecord } from "../node/index.js";
import { exponentialBackoff, untilAborted } from "../runtime/index.js";
import { resumeBegunMoves } from "./begun-moves.js";
import { PrefixWatcher } from "../watcher/index.js";
import type { Leadership } from "./campaign.js";
import type { MasterEvents } from "./events.js";
import { FencedWriter } from "./fencing.js";
import type { Generator } from "./generator.js";
import { pausedError } from "./controls.js";
import { HandoffGate } from "./handoff.js";
import { etcdStatusSource } from "./status-source.js";
import { MoveRecord } from "./move-record.js";
import { type MaxMoving, MovePacer } from "./pacing.js";
import { OperatorWatch } from "./operator-watch.js";
import { answerRequest } from "./requests.js";
import { type HoldSettings, HoldTimer, runSchedule, type ScheduleResult } from "./schedule.js";
import { actionReason, TaskActionQueue } from "./task-actions.js";
import { CoalescingRunner, Debouncer } from "./triggers.js";
import { FailureTracker } from "./failure-tracker.js";
import { joinedAt, LiveWorkers } from "./registered.js";
import { leaderRead, MasterView } from "./view/index.js";
import { restartDefaults, type RestartSettings } from "./escalation.js";

export interface TermSettings extends RestartSettings, HoldSettings {
  expectedWorkers: number;
  intervalMs: number;
  rebalanceWaitMs: number;
  timeoutMs: number;
  barrierTimeoutMs: number;
  handoff: "wait" | "immediate";
  maxMoving: MaxMoving;
  /** The removal guard's limit in percent of the assigned tasks (100: off). */
  maxRemovalPercent: number;
}

export interface TermContext {
  client: Etcd3;
  keys: KeyLayout;
  name: string;
  leadership: Leadership;
  generator: Generator;
  settings: TermSettings;
  logger: Logger;
  /** Forwards the term's figures to the master's listeners. */
  emit: <E extends keyof MasterEvents>(event: E, ...args: MasterEvents[E]) => void;
}

/**
 * What a master does while it leads: the first-start gathering, then schedules on every trigger (worker
 * changes debounced, interval, requests), one at a time with coalescing, all writes fenced.
 */
export class LeaderTerm {
  private readonly signal: AbortSignal;
  private readonly logger: Logger;
  private readonly writer: FencedWriter;
  private readonly workers: PrefixWatcher;
  /** Workers, assignment and controls from one watch: what a schedule reads. */
  private readonly view: MasterView;
  private readonly handoffs?: HandoffGate;
  private readonly pacer?: MovePacer;
  private readonly moves = new MoveRecord();
  private readonly taskActions = new TaskActionQueue();
  private readonly runner: CoalescingRunner<ScheduleResult>;
  private readonly debouncer: Debouncer;
  /** Revision of the newest registration change seen (the debounced schedule is for changes after the last read). */
  private workerChanges = 0;
  private readonly retryBackoff;
  private readonly operator: OperatorWatch;
  private readonly failures: FailureTracker;
  private readonly holds: HoldTimer;
  private interval?: NodeJS.Timeout;
  private retryTimer?: NodeJS.Timeout;
  private pausedRecord?: PausedRecord;
  /** Set by `schedule --allow-removal`; the next schedule consumes it. */
  private allowRemoval = false;
  private triggersStarted = false;
  private readonly live: LiveWorkers;

  constructor(private readonly context: TermContext) {
    const { client, keys, leadership, settings } = context;
    this.signal = leadership.signal;
    this.logger = context.logger;
    this.writer = new FencedWriter(client, leadership.fence, {
      logger: this.logger,
      onDeposed: (error) => leadership.depose(error),
      pausedKey: keys.paused,
      // Running workers' claims and statuses share etcd's queue with a schedule: 8 keep the schedule's share.
      concurrency: 8,
    });
    this.workers = new PrefixWatcher(client, keys.workersPrefix, { logger: this.logger });
    this.live = new LiveWorkers(this.workers, keys);
    this.view = new MasterView(client, keys, { logger: this.logger });
    // One watch of the statuses per term: the hand-off gate starts it, the failure tracker reads it.
    const statuses = settings.handoff === "wait" ? etcdStatusSource(client, keys, this.logger) : undefined;
    if (statuses) {
      this.handoffs = new HandoffGate(statuses, keys, this.writer, {
        logger: this.logger,
        onReleased: (event) => {
          this.logger.debug(event, "hand-off: task written to its new worker");
          context.emit("handoffWait", event);
          this.pacer?.refill(this.signal);
        },
        onWriteFailed: (error) => this.logger.warn({ err: error }, "hand-off write failed; writing it again"),
        liveWorkers: () => this.live.names(),
      });
    }
    if (this.handoffs) {
      this.pacer = new MovePacer(keys, this.handoffs, this.writer, {
        logger: this.logger,
        onFailed: (error) => {
          this.logger.warn({ err: error }, "starting paced moves failed; scheduling again");
          this.runner.trigger("handoff-retry");
        },
      });
    }
    this.runner = new CoalescingRunner((reasons) => this.schedule(reasons), { paused: true });
    this.failures = new FailureTracker(client, keys, this.writer, {
      defaults: restartDefaults(settings),
      logger: this.logger,
      onEscalation: (reason) => this.runner.trigger(reason),
      statuses: statuses?.view,
      autoCordonAfter: settings.autoCordonAfter,
    });
    this.debouncer = new Debouncer(settings.rebalanceWaitMs, () => this.runner.trigger("workers"));
    this.holds = new HoldTimer(client, keys, settings, (reason) => this.runner.trigger(reason), this.logger);
    this.retryBackoff = exponentialBackoff({ initialMs: 500, maxMs: settings.intervalMs });
    this.operator = new OperatorWatch(
      client,
      keys,
      {
        onPause: (record) => this.onPause(record),
        // An operator's cordon or a worker's draining mark is acted on at once, without the debounce.
        onCordonsChanged: (reason) => this.runner.trigger(reason),
        onDrainingEnded: () => this.workersChanged(),
        onRequest: (key, request) =>
          void answerRequest(
            {
              client,
              leader: context.name,
              epoch: leadership.epoch,
              logger: this.logger,
              paused: () => this.pausedRecord,
              allowRemovalOnce: () => {
                this.allowRemoval = true;
              },
              schedule: (reason) => this.runner.request(reason),
              taskAction: (action, actor) => {
                const outcome = this.taskActions.add(action);
                this.runner.request(actionReason(action, actor)).catch((error: unknown) => {
                  this.taskActions.refuseWaiting(error);
                });
                return outcome;
              },
            },
            key,
            request,
          ),
      },
      this.logger,
    );
  }

  /** Starts the triggers and resolves when the leadership ends; throws if the term cannot start. */
  async run(): Promise<void> {
    const { signal } = this;
    this.workers.on("change", () => this.workersChanged());
    this.workers.on("resync", () => this.workersChanged());
    this.interval = setInterval(() => this.runner.trigger("interval"), this.context.settings.intervalMs);
    const starting = (async () => {
      await this.handoffs?.start(signal);
      await Promise.all([this.workers.start(signal), this.view.start(signal)]);
      await this.failures.start(signal);
      // A first start has nothing moving: no read of the move records then.
      if (!(await this.gather()) && this.handoffs)
        await resumeBegunMoves(this.context, this.handoffs, this.failures, () => this.live.list(), signal);
      this.runner.trigger("elected");
      await Promise.all([this.operator.start(signal), this.holds.start(signal)]);
      const paused = this.pausedRecord;
      this.pausedRecord = undefined;
      this.triggersStarted = true;
      if (paused) this.onPause(paused);
      else this.runner.resume();
    })();
    // A request stuck on a dead connection must not keep a deposed master from noticing.
    starting.catch(() => undefined);
    await Promise.race([starting, untilAborted(signal)]);
    await untilAborted(signal);
  }

  /** Schedules after the running schedule (if any); undefined once the term is over. */
  scheduleNow(reason: string): Promise<ScheduleResult | undefined> {
    if (this.pausedRecord) return Promise.reject(pausedError(this.pausedRecord));
    return this.runner.request(reason);
  }

  /** Stops the triggers, waits for the running schedule (aborted by the leadership's signal), closes the watches. */
  async close(): Promise<void> {
    clearInterval(this.interval);
    this.debouncer.cancel();
    await this.runner.close();
    this.taskActions.close();
    clearTimeout(this.retryTimer);
    await this.pacer?.cancelPending();
    await this.handoffs?.close();
    await Promise.all([this.workers.close(), this.view.close()]);
    await this.operator.close();
    await Promise.all([this.failures.close(), this.holds.close()]);
  }

  /** A registration came or went (or a drain ended): schedule once they have been quiet for the rebalance wait. */
  private workersChanged(): void {
    this.live.forget();
    this.workerChanges += 1;
    this.debouncer.poke();
    this.handoffs?.targetsChanged();
  }

  private async schedule(reasons: string[]): Promise<ScheduleResult | undefined> {
    const { context, signal, logger } = this;
    clearTimeout(this.retryTimer);
    const allowRemoval = this.allowRemoval;
    this.allowRemoval = false;
    const actions = this.taskActions.take(this.handoffs);
    // Worker changes up to the generator's call are known to this schedule; a later one is news to it.
    let workersKnown = this.workerChanges;
    try {
      const result = await runSchedule(
        {
          client: context.client,
          keys: context.keys,
          leader: context.name,
          epoch: context.leadership.epoch,
          writer: this.writer,
          generator: context.generator,
          timeoutMs: context.settings.timeoutMs,
          handoffs: this.handoffs,
          pacer: this.pacer,
          maxMoving: context.settings.maxMoving,
          moves: this.moves,
          joinedAt: () => joinedAt(this.workers, context.keys),
          maxRemovalPercent: context.settings.maxRemovalPercent,
          holds: this.holds,
          allowRemoval,
          liveWorkers: () => {
            workersKnown = this.workerChanges;
            return this.live.list();
          },
          readAssignment: leaderRead(this.view, { ...context, writer: this.writer, logger, signal }),
          actions,
          failures: this.failures,
          logger,
          signal,
        },
        reasons,
      );
      actions?.settle();
      this.retryBackoff.reset();
      // Worker changes this schedule's generator was told of need no debounced schedule of their own
      // (its read, later, may show a worker that joined meanwhile, but the tasks were made without it).
      if (this.workerChanges === workersKnown) this.debouncer.cancel();
      // The logger already carries the epoch.
      const { epoch: _, ...figures } = result;
      logger.info(figures, "schedule applied");
      context.emit("scheduled", result);
      return result;
    } catch (error) {
      actions?.settle(error);
      if (signal.aborted || this.writer.deposed) return undefined;
      if (isEschedulerError(error) && error.code === "ERR_PAUSED") {
        logger.info({ reasons }, "schedule skipped: paused (one schedule runs on resume)");
        throw error;
      }
      if (isEschedulerError(error) && error.code === "ERR_REMOVAL_GUARD") {
        logger.warn(
          { reasons, refusal: error.message },
          "schedule refused by the removal guard; etcd unchanged",
        );
        context.emit("scheduleFailed", { reason: "removal_guard", error });
        throw error;
      }
      const known = isEschedulerError(error);
      logger.error({ err: error, reasons }, "schedule failed; etcd keeps the previous assignment");
      context.emit("scheduleFailed", { reason: known ? error.code : "ERR_ETCD", error: error as Error });
      context.emit("error", error as Error);
      // etcd trouble is retried; a generator's mistake waits for the next trigger.
      if (!known) this.retryTimer = setTimeout(() => this.runner.trigger("retry"), this.retryBackoff.next());
      throw error;
    }
  }

  /** While paused the runner holds every trigger (they coalesce); resuming runs one schedule. */
  private onPause(record: PausedRecord | undefined): void {
    const wasPaused = this.pausedRecord !== undefined;
    this.pausedRecord = record;
    if (!this.triggersStarted) return;
    if (record) {
      // Waiting requests are refused; the triggers stay remembered for the schedule on resume.
      this.runner.pause(pausedError(record));
      // Queued moves are not started; those already begun finish (their task would run nowhere otherwise).
      if (!wasPaused) void this.pacer?.cancelPending();
      if (!wasPaused) this.logger.info({ reason: record.reason, since: record.at }, "schedules paused");
      this.context.emit("paused", { reason: record.reason, since: record.at });
    } else if (wasPaused) {
      this.logger.info("schedules resumed");
      this.context.emit("resumed", {});
      this.runner.trigger("resumed");
      this.runner.resume();
    }
  }

  /** First start of a fleet (true): gather the expected workers (at most `barrierTimeout`), then set the marker. */
  private async gather(): Promise<boolean> {
    const { client, keys, name, leadership, settings } = this.context;
    const { logger } = this;
    if (await isBarrierLeft(client, keys)) return false;
    const { expectedWorkers, barrierTimeoutMs } = settings;
    if (expectedWorkers > 0) {
      const { session } = leadership;
      const barrier = gatheringBarrier({ client, keys, name, expectedWorkers, session, logger });
      logger.info({ expectedWorkers, barrierTimeoutMs }, "gathering the first start's workers");
      try {
        await barrier.enter({ signal: this.signal, timeoutMs: barrierTimeoutMs });
        // Leaving only removes our key here; the workers leave once their tasks run.
        void barrier.leave({ signal: this.signal }).catch((error: unknown) => {
          if (!this.signal.aborted) logger.warn({ err: error }, "leaving the gathering barrier failed");
        });
      } catch (error) {
        if ((error as EschedulerError).code !== "ERR_BARRIER_TIMEOUT") throw error;
        const arrived = await barrier.participants().catch(() => [] as string[]);
        logger.warn(
          {
            expectedWorkers,
            arrived,
            missing: expectedWorkers - arrived.length,
            registeredButAbsent: this.live.list().filter((worker) => !arrived.includes(worker)),
          },
          "barrier timed out; scheduling with the workers present",
        );
      }
    }
    await markBarrierLeft(client, keys, leadership.fence);
    return true;
  }
}
