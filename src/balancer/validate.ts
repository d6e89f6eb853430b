import { PlanInputError } from "./errors.js";
import { IdTable } from "./id-table.js";
import { labelsProblem } from "./labels.js";
import { restartProblem } from "./restart.js";
import type { Problem } from "./model.js";
import type { AssignmentInput, PlanInput, Task } from "./types.js";

const MAX_NAME_LENGTH = 200;
const SLASH = 0x2f;

/** Why `value` cannot be a task id or worker name (it becomes part of an etcd key), or undefined. */
export function nameProblem(value: unknown): string | undefined {
  if (typeof value !== "string") return "must be a string";
  if (value.length === 0) return "must not be empty";
  if (value.length > MAX_NAME_LENGTH) return `must be at most ${MAX_NAME_LENGTH} characters`;
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code === SLASH) return 'must not contain "/"';
    if (code < 0x20 || (code >= 0x7f && code <= 0x9f)) return "must not contain control characters";
  }
  return undefined;
}

function assertName(kind: string, value: unknown): asserts value is string {
  const problem = nameProblem(value);
  if (problem) throw new PlanInputError(`${kind} ${JSON.stringify(value)}`, problem);
}

function optionalNumber(task: Task, field: "priority" | "weight", fallback: number): number {
  const value = task[field];
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || (field === "weight" && value <= 0)) {
    const rule = field === "weight" ? "a finite number > 0" : "a finite number";
    throw new PlanInputError(`task ${JSON.stringify(task.id)}`, `${field} must be ${rule}, got ${value}`);
  }
  return value;
}

function indexWorkers(input: PlanInput) {
  if (!Array.isArray(input.workers)) throw new PlanInputError("workers", "must be an array");
  const specs = input.workers.map((worker) => {
    const spec = typeof worker === "string" ? { name: worker } : worker;
    assertName("worker name", spec?.name);
    const capacity = spec.capacity ?? Number.POSITIVE_INFINITY;
    if (typeof capacity !== "number" || Number.isNaN(capacity) || capacity < 0) {
      throw new PlanInputError(`worker ${JSON.stringify(spec.name)}`, "capacity must be a number ≥ 0");
    }
    const problem = labelsProblem(spec.labels);
    if (problem) throw new PlanInputError(`worker ${JSON.stringify(spec.name)}`, problem);
    return { name: spec.name, capacity, labels: spec.labels };
  });
  specs.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const workerIndex = new Map<string, number>();
  const capacity = new Float64Array(specs.length);
  specs.forEach((spec, index) => {
    if (workerIndex.has(spec.name)) {
      throw new PlanInputError(`worker name ${JSON.stringify(spec.name)}`, "listed twice");
    }
    workerIndex.set(spec.name, index);
    capacity[index] = spec.capacity;
  });
  const hasCapacity = capacity.some((value) => value !== Number.POSITIVE_INFINITY);
  const labels = specs.map((spec) => spec.labels);
  return { workers: specs.map((spec) => spec.name), workerIndex, capacity, hasCapacity, labels };
}

/** The number of `name` in `index`, the next free one if it is new. */
function numberFor(index: Map<string, number>, name: string): number {
  const known = index.get(name);
  if (known !== undefined) return known;
  index.set(name, index.size);
  return index.size - 1;
}

function indexTasks(tasks: readonly Task[]) {
  if (!Array.isArray(tasks)) throw new PlanInputError("tasks", "must be an array");
  const n = tasks.length;
  const ids: string[] = new Array(n);
  const taskIndex = new IdTable(ids, n);
  const groupIndex = new Map<string, number>();
  const keyIndex = new Map<string, number>();
  const group = new Int32Array(n);
  const key = new Int32Array(n);
  const priority = new Float64Array(n);
  const weight = new Float64Array(n);
  let prioritiesDiffer = false;
  for (let i = 0; i < n; i++) {
    const task = tasks[i];
    if (task === null || typeof task !== "object")
      throw new PlanInputError(`tasks[${i}]`, "must be an object");
    assertName("task id", task.id);
    ids[i] = task.id;
    if (taskIndex.add(i) >= 0)
      throw new PlanInputError(`task id ${JSON.stringify(task.id)}`, "generated twice");
    const groupName = task.group ?? "";
    if (typeof groupName !== "string") {
      throw new PlanInputError(`task ${JSON.stringify(task.id)}`, "group must be a string");
    }
    group[i] = numberFor(groupIndex, groupName);
    if (task.key === undefined) {
      key[i] = -1;
    } else {
      if (typeof task.key !== "string" || task.key.length === 0) {
        throw new PlanInputError(`task ${JSON.stringify(task.id)}`, "key must be a non-empty string");
      }
      key[i] = numberFor(keyIndex, task.key);
    }
    const restart = task.restart === undefined ? undefined : restartProblem(task.restart);
    if (restart) throw new PlanInputError(`task ${JSON.stringify(task.id)}`, restart);
    priority[i] = optionalNumber(task, "priority", 0);
    weight[i] = optionalNumber(task, "weight", 1);
    if (i > 0 && priority[i] !== priority[0]) prioritiesDiffer = true;
  }
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  if (prioritiesDiffer) order.sort((a, b) => priority[b] - priority[a] || a - b);
  return {
    ids,
    taskIndex,
    group,
    groupCount: groupIndex.size,
    key,
    keyCount: keyIndex.size,
    keyNames: [...keyIndex.keys()],
    priority,
    weight,
    order,
  };
}

function listings(
  current: AssignmentInput | undefined,
  field = "current",
): Array<[string, readonly string[]]> {
  if (current === undefined || current === null) return [];
  if (current instanceof Map) return [...current.entries()];
  if (typeof current !== "object") throw new PlanInputError(field, "must be a record or a Map");
  return Object.entries(current);
}

/** Checks the whole input and indexes it; throws PlanInputError naming the first culprit. */
export function indexInput(input: PlanInput): Problem {
  if (input === null || typeof input !== "object") throw new PlanInputError("input", "must be an object");
  const fleet = indexWorkers(input);
  const tasks = indexTasks(input.tasks);
  if (fleet.workers.length === 0 && tasks.ids.length > 0) {
    throw new PlanInputError("workers", `no online workers for ${tasks.ids.length} tasks`);
  }
  const holder = new Int32Array(tasks.ids.length).fill(-1);
  const current = listings(input.current).map(([worker, ids]) => {
    const notIds = () =>
      new PlanInputError(`current[${JSON.stringify(worker)}]`, "must be an array of task ids");
    if (!Array.isArray(ids)) throw notIds();
    const index = fleet.workerIndex.get(worker) ?? -1;
    const listed = new Int32Array(ids.length);
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (typeof id !== "string") {
        if (i in ids) throw notIds();
        listed[i] = -1; // a hole: skipped, as forEach skips it
        continue;
      }
      const t = tasks.taskIndex.get(id) ?? -1;
      listed[i] = t;
      if (t >= 0 && index >= 0 && (holder[t] < 0 || index < holder[t])) holder[t] = index;
    }
    return { worker, index, ids, tasks: listed };
  });
  return {
    ...fleet,
    ...tasks,
    holder,
    current,
    avoid: indexAvoid(input.exclude, fleet.workerIndex, tasks.taskIndex),
  };
}

/** `exclude` as task number → online worker numbers (ascending); ids and workers not in the input are ignored. */
function indexAvoid(
  exclude: AssignmentInput | undefined,
  workerIndex: ReadonlyMap<string, number>,
  taskIndex: { get(id: string): number | undefined },
): Map<number, number[]> {
  const avoid = new Map<number, number[]>();
  for (const [id, workers] of listings(exclude, "exclude")) {
    if (!Array.isArray(workers) || workers.some((worker) => typeof worker !== "string")) {
      throw new PlanInputError(`exclude[${JSON.stringify(id)}]`, "must be an array of worker names");
    }
    const t = taskIndex.get(id);
    if (t === undefined) continue;
    const numbers = workers.flatMap((worker) => workerIndex.get(worker) ?? []).sort((a, b) => a - b);
    if (numbers.length > 0) avoid.set(t, [...new Set(numbers)]);
  }
  return avoid;
}
