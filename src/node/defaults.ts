/**
 * The one place every default setting is defined: the library's `Master` and `Worker` and the command
 * line's flags take these, so a node behaves the same however it is started.
 */
export const DEFAULTS = {
  etcd: "127.0.0.1:2379",
  root: "escheduler",
  ttlMs: 10_000,
  dialTimeoutMs: 5_000,
  expectedWorkers: 0,
  logLevel: "info",
  intervalMs: 60_000,
  rebalanceWaitMs: 5_000,
  timeoutMs: 30_000,
  barrierTimeoutMs: 300_000,
  handoff: "wait",
  /**
   * Tasks between owners at once (`--max-moving`): a count or a percentage of the generated tasks. A
   * count, so a small fleet's moves (a drain, a join) go at once and a large rebalance goes in waves.
   */
  maxMoving: 1_000,
  maxRemovalPercent: 50,
  /** Failures on one worker within the restart window before a task moves (0: restart there forever). */
  restartLimit: 0,
  restartWindowMs: 300_000,
  /** Distinct workers a task reached its restart limit on before it is quarantined (0: never). */
  quarantineAfter: 3,
  autoCordonAfter: 0,
  /** `--reassign-delay`: 0, a crashed worker's tasks move at once. */
  reassignDelayMs: 0,
  stopTimeoutMs: 30_000,
} as const;
