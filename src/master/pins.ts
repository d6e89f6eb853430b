/**
 * Pins (`escheduler task pin`): the planner keeps or puts a pinned task on its worker while that worker
 * is eligible for it. A pin reaches the pure planner as a hard selector term on a label only the pinned
 * worker carries, so balance, capacity and the other constraints still count the task where it is.
 */
import { formatSelector, matches, type Task, type WorkerSpec } from "../balancer/index.js";
import {
  type KeyLayout,
  keyText,
  type Logger,
  type PinRecord,
  pinRecordSchema,
  readRecord,
  silentLogger,
} from "../node/index.js";
import type { CurrentAssignment } from "./changes.js";
import { type Controls, type Cordons, cordonMode, plannerWorkers } from "./controls.js";
import type { RegisteredWorker } from "./registered.js";
import type { TaskActionBatch } from "./task-actions.js";
import type { ValidTask } from "./validation.js";

/** A pin the plan does not follow, with why (shown by `status`, the console and `/R/plan`). */
export interface IgnoredPin {
  id: string;
  worker: string;
  reason: string;
}

/** Pins listed in `/R/plan` as ignored. */
export const IGNORED_PINS_LIMIT = 100;
const PIN_LABEL_PREFIX = "pin.escheduler.io/w";

/** Pins from raw key-values: task id → record; keys that are not pins and bad values are skipped (one warning). */
export function parsePins(
  keys: KeyLayout,
  kvs: Iterable<{ key: Buffer | string; value: Buffer | string }>,
  logger: Logger = silentLogger,
): Map<string, PinRecord> {
  const pins = new Map<string, PinRecord>();
  for (const kv of kvs) {
    const key = keyText(kv.key, logger);
    const taskId = key === undefined ? undefined : keys.parsePin(key);
    if (key === undefined || taskId === undefined) continue;
    const record = readRecord(pinRecordSchema, key, kv.value, logger);
    if (record) pins.set(taskId, record);
  }
  return pins;
}

/**
 * Why `worker` cannot hold `task` for a pin, or undefined when it can: registered, not draining, not
 * cordoned (unless it holds the task already), matching the task's selector, and the task has no
 * affinity key (its key decides where it runs).
 */
export function pinProblem(
  task: Task,
  worker: string,
  registered: ReadonlyMap<string, { labels?: Record<string, string> }>,
  cordons: Cordons,
  holdsTask: boolean,
): string | undefined {
  const info = registered.get(worker);
  if (!info) return `${worker} is not registered`;
  const mode = cordonMode(cordons, worker);
  if (mode === "drain") return `${worker} is draining`;
  if (mode === "cordon" && !holdsTask) return `${worker} is cordoned`;
  if (task.selector && !matches(task.selector, info.labels))
    return `${worker} does not match the task's selector (${formatSelector(task.selector)})`;
  if (task.key !== undefined) return `the task has an affinity key (${task.key}) that decides its worker`;
  return undefined;
}

/**
 * The planner's input with every eligible pin as a hard selector term (pinned workers get a label of
 * their own), and the pins ignored with their reason. Pins of tasks not generated are left out.
 */
export function applyPins(
  input: { workers: WorkerSpec[]; tasks: Task[] },
  pins: ReadonlyMap<string, PinRecord>,
  registered: ReadonlyArray<{ name: string; labels?: Record<string, string> }>,
  cordons: Cordons,
  holds: (taskId: string, worker: string) => boolean,
): { workers: WorkerSpec[]; tasks: Task[]; ignored: IgnoredPin[] } {
  if (pins.size === 0) return { ...input, ignored: [] };
  const byName = new Map(registered.map((worker) => [worker.name, worker]));
  const ignored: IgnoredPin[] = [];
  const labelOf = new Map<string, string>();
  const tasks = input.tasks.map((task) => {
    const pin = pins.get(task.id);
    if (!pin) return task;
    const problem = pinProblem(task, pin.worker, byName, cordons, holds(task.id, pin.worker));
    if (problem) {
      ignored.push({ id: task.id, worker: pin.worker, reason: problem });
      return task;
    }
    let label = labelOf.get(pin.worker);
    if (label === undefined) {
      label = `${PIN_LABEL_PREFIX}${labelOf.size}`;
      labelOf.set(pin.worker, label);
    }
    return { ...task, selector: { ...task.selector, [label]: { exists: true } } };
  });
  const workers = input.workers.map((worker) => {
    const label = labelOf.get(worker.name);
    return label === undefined ? worker : { ...worker, labels: { ...worker.labels, [label]: "" } };
  });
  return { workers, tasks, ignored };
}

/**
 * The planner's input of a schedule: the workers it may use (cordons and drains applied), the tasks
 * with their pins (the operator's, and restarts in flight through `actions`), the current assignment;
 * and the operator's pins it cannot follow.
 */
export function plannerInput(
  tasks: readonly ValidTask[],
  workers: readonly RegisteredWorker[],
  current: CurrentAssignment,
  controls: Controls,
  actions?: TaskActionBatch,
): {
  input: { workers: WorkerSpec[]; tasks: Task[]; current: Map<string, string[]> };
  ignoredPins: IgnoredPin[];
} {
  const pins = actions?.pins(controls.pins) ?? controls.pins ?? new Map<string, PinRecord>();
  const restarting = actions?.restarting ?? new Map<string, string>();
  // A task a restart took away and writes back is its worker's still (kept there, even when cordoned).
  const holds = (taskId: string, worker: string) =>
    current.get(worker)?.has(taskId) === true || restarting.get(taskId) === worker;
  const pinned = applyPins(
    { workers: plannerWorkers(workers, controls.cordons), tasks: tasks.map((valid) => valid.task) },
    pins,
    workers,
    controls.cordons,
    holds,
  );
  const planned = new Map([...current].map(([worker, ids]) => [worker, [...ids.keys()]]));
  for (const [taskId, worker] of restarting) {
    if (current.get(worker)?.has(taskId)) continue;
    planned.set(worker, [...(planned.get(worker) ?? []), taskId]);
  }
  return {
    input: { workers: pinned.workers, tasks: pinned.tasks, current: planned },
    ignoredPins: pinned.ignored.filter((pin) => controls.pins?.has(pin.id)).slice(0, IGNORED_PINS_LIMIT),
  };
}
