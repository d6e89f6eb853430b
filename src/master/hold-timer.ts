import type { Etcd3 } from "etcd3";
import {
  heldRecordSchema,
  type KeyLayout,
  type Logger,
  readRecord,
  repairHeldRecord,
} from "../node/index.js";
import { PrefixWatcher } from "../watcher/index.js";

/** Slack after a hold's end, so the schedule it triggers reads the hold as over (timers may fire a little early). */
const END_SLACK_MS = 5;

export interface HoldSettings {
  /** `--reassign-delay`: how long a crashed worker's tasks wait for it (0 or absent: they move at once). */
  reassignDelayMs?: number;
}

/**
 * The leader's side of `--reassign-delay`: asks for a schedule when the first hold ends (`arm`, after
 * every schedule) and when an operator releases one (`escheduler release` sets its end to now). The
 * holds themselves live in etcd, so a new leader re-arms from its first schedule.
 */
export class HoldTimer {
  private readonly watcher: PrefixWatcher;
  private timer?: NodeJS.Timeout;
  private armedAt?: number;

  /** New holds last this long (0: none is made). */
  readonly delayMs: number;

  constructor(
    client: Etcd3,
    private readonly keys: KeyLayout,
    settings: HoldSettings,
    private readonly onDue: (reason: "hold-ended" | "hold-released") => void,
    private readonly logger: Logger,
  ) {
    this.delayMs = settings.reassignDelayMs ?? 0;
    this.watcher = new PrefixWatcher(client, keys.heldPrefix, { logger });
  }

  async start(signal: AbortSignal): Promise<void> {
    await this.watcher.start(signal);
    this.watcher.on("change", (change) => {
      if (change.type !== "put" || this.keys.parseHeld(change.key) === undefined) return;
      const record = readRecord(heldRecordSchema, change.key, change.value, this.logger, {
        repair: repairHeldRecord,
      });
      // The leader's own new holds end later; a record that is already over was released (or is bad).
      if (record && Date.parse(record.until) <= Date.now()) this.onDue("hold-released");
    });
  }

  /** Schedules once at `endsAtMs` (ms since the epoch); undefined: nothing held, no timer. */
  arm(endsAtMs: number | undefined): void {
    if (endsAtMs === this.armedAt) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.armedAt = endsAtMs;
    if (endsAtMs === undefined) return;
    // setTimeout takes at most 2^31 - 1 ms; a longer hold is re-armed by the schedules in between.
    const waitMs = Math.min(Math.max(0, endsAtMs - Date.now()) + END_SLACK_MS, 2 ** 31 - 1);
    this.timer = setTimeout(() => {
      this.armedAt = undefined;
      this.onDue("hold-ended");
    }, waitMs);
  }

  async close(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.watcher.close();
  }
}
