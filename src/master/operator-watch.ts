import type { Etcd3 } from "etcd3";
import {
  type KeyLayout,
  type Logger,
  type PausedRecord,
  pausedRecordSchema,
  readRecord,
  repairPausedRecord,
  type ScheduleRequestRecord,
  scheduleRequestRecordSchema,
} from "../node/index.js";
import { PrefixWatcher } from "../watcher/index.js";

export interface OperatorWatchHandlers {
  /** The pause record appeared, changed (a record) or went away (undefined). */
  onPause(record: PausedRecord | undefined): void;
  /** A cordon/drain record changed, or a worker marked itself draining. */
  onCordonsChanged(reason: "cordon" | "draining" | "pin"): void;
  /** A worker's draining mark went at `revision` (with its lease, or the worker took it back: steady again). */
  onDrainingEnded(revision: number): void;
  /** A schedule request that has no answer yet. */
  onRequest(key: string, request: ScheduleRequestRecord): void;
}

/** What the leader watches of the operator's controls: the pause, cordons, draining marks, pins and requests. */
export class OperatorWatch {
  private readonly paused: PrefixWatcher;
  private readonly cordons: PrefixWatcher;
  private readonly draining: PrefixWatcher;
  private readonly requests: PrefixWatcher;
  private readonly pins: PrefixWatcher;

  constructor(
    client: Etcd3,
    private readonly keys: KeyLayout,
    private readonly handlers: OperatorWatchHandlers,
    private readonly logger: Logger,
  ) {
    this.paused = new PrefixWatcher(client, keys.paused, { logger });
    this.cordons = new PrefixWatcher(client, keys.cordonsPrefix, { logger });
    this.draining = new PrefixWatcher(client, keys.drainingPrefix, { logger });
    this.requests = new PrefixWatcher(client, keys.requestsPrefix, { logger });
    this.pins = new PrefixWatcher(client, keys.pinsPrefix, { logger });
  }

  /**
   * Starts the watches. The pause as it is now goes to `onPause` first; requests already waiting are
   * handed over after that, then every change as it comes.
   */
  async start(signal: AbortSignal): Promise<void> {
    const pausedView = await this.paused.start(signal);
    const value = pausedView.get(this.keys.paused);
    this.handlers.onPause(this.pausedRecord(value));
    this.paused.on("change", (change) => {
      if (change.key === this.keys.paused)
        this.handlers.onPause(change.type === "delete" ? undefined : this.pausedRecord(change.value));
    });
    await this.cordons.start(signal);
    this.cordons.on("change", () => this.handlers.onCordonsChanged("cordon"));
    await this.draining.start(signal);
    // A mark goes with its worker's lease, or when a worker whose lease flapped is steady again: either
    // is a change of the workers, scheduled after the rebalance wait as a join or a leave is (at once
    // would cut short hand-offs still in flight).
    this.draining.on("change", (change) => {
      if (change.type === "put") this.handlers.onCordonsChanged("draining");
      else this.handlers.onDrainingEnded(change.revision);
    });
    await this.pins.start(signal);
    this.pins.on("change", () => this.handlers.onCordonsChanged("pin"));
    const waiting = await this.requests.start(signal);
    this.requests.on("change", (change) => {
      if (change.type === "put") this.offerRequest(change.key, change.value);
    });
    for (const [key, value] of waiting) this.offerRequest(key, value);
  }

  async close(): Promise<void> {
    await Promise.all(
      [this.paused, this.cordons, this.draining, this.requests, this.pins].map((w) => w.close()),
    );
  }

  /** The pause record; present but unreadable still pauses. */
  private pausedRecord(value: string | undefined): PausedRecord | undefined {
    return readRecord(pausedRecordSchema, this.keys.paused, value, this.logger, {
      repair: repairPausedRecord,
    });
  }

  private offerRequest(key: string, value: string): void {
    if (this.keys.parseRequest(key) === undefined) return;
    const request = readRecord(scheduleRequestRecordSchema, key, value, this.logger);
    if (request && !request.outcome) this.handlers.onRequest(key, request);
  }
}
