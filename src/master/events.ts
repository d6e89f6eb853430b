import type { HandoffWaitEvent } from "./handoff.js";
import type { ScheduleResult } from "./schedule.js";

export interface ElectedEvent {
  epoch: number;
  electionKey: string;
}

export interface DeposedEvent {
  epoch: number;
  reason: string;
}

export interface ScheduleFailedEvent {
  /** The error code (ERR_GENERATOR, ERR_BAD_TASK, …) or "ERR_ETCD" for a failed etcd request. */
  reason: string;
  error: Error;
}

export interface PausedEvent {
  reason?: string;
  /** RFC 3339 time the operator paused. */
  since: string;
}

/** Typed events of a Master; the CLI maps them to metrics. */
export interface MasterEvents {
  elected: [ElectedEvent];
  /** Leadership ended for any reason other than `stop()`. */
  deposed: [DeposedEvent];
  scheduled: [ScheduleResult];
  /** The leader saw `escheduler pause` (also when elected while paused). */
  paused: [PausedEvent];
  /** The leader saw `escheduler resume`; one schedule follows. */
  resumed: [Record<string, never>];
  scheduleFailed: [ScheduleFailedEvent];
  /** A handed-off task was written to its new worker after waiting `ms` for the old one to stop it. */
  handoffWait: [HandoffWaitEvent];
  /** Emitted only when someone listens (an unheard `error` would crash the process); always logged. */
  error: [Error];
}
