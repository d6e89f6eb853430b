import {
  antiKeyProblem,
  IdTable,
  restartProblem,
  selectorProblem,
  spreadProblem,
} from "../balancer/index.js";
import { z } from "zod";
import { EschedulerError } from "../errors.js";
import { nameProblem, type Task } from "../node/index.js";
import { maxDowntimeProblem } from "./held-tasks.js";

/** etcd refuses requests over 1.5 MiB by default; one task value (with its key) stays within 1 MiB. */
export const MAX_TASK_VALUE_BYTES = 1024 * 1024;

/** A task that passed validation, with the exact value stored under its key. */
export interface ValidTask {
  task: Task;
  /** JSON stored under `/R/task/<worker>/<id>`. */
  value: string;
  /** UTF-8 length of `value`. */
  bytes: number;
}

const layoutName = z.string().superRefine((value, ctx) => {
  const problem = nameProblem(value);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
});

/** A field the planner's own check validates (one rule for the master, `plan` and the CLI). */
function checked(problemOf: (value: unknown) => string | undefined) {
  return z
    .unknown()
    .superRefine((value, ctx) => {
      const problem = problemOf(value);
      if (problem) ctx.addIssue({ code: "custom", message: problem });
    })
    .optional();
}

export const taskSchema = z.strictObject({
  id: layoutName,
  key: layoutName.optional(),
  // "" is the default group, so it is accepted as an explicit value too.
  group: z.union([z.literal(""), layoutName]).optional(),
  priority: z.number().optional(),
  weight: z.number().positive().optional(),
  selector: checked(selectorProblem),
  spread: checked(spreadProblem),
  antiKey: checked(antiKeyProblem),
  restart: checked(restartProblem),
  maxDowntime: checked(maxDowntimeProblem),
  payload: z
    .unknown()
    .superRefine((value, ctx) => {
      const problem = jsonProblem(value, "payload", new Set());
      if (problem) ctx.addIssue({ code: "custom", message: problem });
    })
    .optional(),
});

/** Generated task id → its task, looked up by id. */
export interface TaskLookup {
  get(id: string): ValidTask | undefined;
  has(id: string): boolean;
}

/** A TaskLookup through validation's index: each id's position among `count` tasks. */
export interface IndexedTaskLookup extends TaskLookup {
  positions: TaskPositions;
  count: number;
}

/** Task id → its index among the tasks. */
export interface TaskPositions {
  get(id: string): number | undefined;
}

/** Validated tasks with each id's index among them (the index validation builds to find duplicates). */
export interface ValidatedTasks {
  tasks: ValidTask[];
  positions: TaskPositions;
}

/**
 * Checks a generator's output: an array of tasks with valid ids, keys and groups, unique ids, numeric
 * priority, positive weight, a JSON payload and a stored value within MAX_TASK_VALUE_BYTES.
 * Throws one ERR_BAD_TASK naming the first culprit (or ERR_GENERATOR when the output is not an array).
 */
export function validateTasks(output: unknown): ValidTask[] {
  return validatedTasks(output).tasks;
}

/** `validateTasks`, with the index of each id. */
export function validatedTasks(output: unknown): ValidatedTasks {
  if (!Array.isArray(output)) {
    throw new EschedulerError(
      "ERR_GENERATOR",
      `generator returned ${describe(output)}, not an array of tasks`,
    );
  }
  // The length once: a getter on a task (or a Proxy) could grow the array while it is read, and the id
  // table holds exactly this many. The ids by index, and an open-addressing table over them (cheaper
  // than a Map of 100,000 strings).
  const count = output.length;
  const ids: string[] = new Array(count);
  const firstIndexOfId = new IdTable(ids, count);
  const valid: ValidTask[] = new Array(count);
  const fast = plainObjectsAreClean();
  for (let index = 0; index < count; index++) {
    const candidate: unknown = output[index];
    const simple = fast ? readSimple(candidate) : undefined;
    let task = simple?.task;
    if (!task) {
      // A simple candidate's fields were read once, into `simple.read`: the schema judges those values.
      const parsed = taskSchema.safeParse(simple ? simple.read : candidate);
      if (!parsed.success) throw badTask(index, candidate, issueText(parsed.error.issues[0]));
      task = parsed.data as Task;
    }
    ids[index] = task.id;
    const earlier = firstIndexOfId.add(index);
    if (earlier >= 0) throw badTask(index, candidate, `duplicate id (also task #${earlier})`);
    const value = JSON.stringify(task);
    const bytes = Buffer.byteLength(value);
    if (bytes > MAX_TASK_VALUE_BYTES) {
      throw badTask(
        index,
        candidate,
        `stored value is ${bytes} bytes, over the ${MAX_TASK_VALUE_BYTES}-byte limit`,
      );
    }
    valid[index] = { task, value, bytes };
  }
  return { tasks: valid, positions: firstIndexOfId };
}

/** `tasks` by id through `positions` (id → index in `tasks`): no map of its own. */
export function taskLookup(tasks: readonly ValidTask[], positions: TaskPositions): IndexedTaskLookup {
  return {
    positions,
    count: tasks.length,
    get: (id) => {
      const at = positions.get(id);
      return at === undefined ? undefined : tasks[at];
    },
    has: (id) => positions.get(id) !== undefined,
  };
}

/** The fields `readSimple` checks itself, in the schema's order (the order of the stored value's fields). */
const SIMPLE_FIELDS = ["id", "key", "group", "priority", "weight"] as const;
const SIMPLE = new Set<string>(SIMPLE_FIELDS);

/**
 * Whether a plain object's fields are its own: no field of the schema and no enumerable key is inherited
 * from `Object.prototype` (a polluted prototype, which the schema reads and `readSimple` would not).
 */
function plainObjectsAreClean(): boolean {
  if (Object.keys(Object.prototype).length > 0) return false;
  return !Object.keys(taskSchema.shape).some((field) => field in Object.prototype);
}

/**
 * A plain object whose own enumerable keys are only id, key, group, priority and weight: its fields read
 * once, in the schema's order (`read`), and the task `taskSchema` makes of them when all are valid,
 * checked without zod (a 100,000-task generator spent ~50 ms in it). Undefined for anything else (another
 * key, another prototype): the schema reads the candidate itself. A field is never read twice, so a getter
 * cannot show the check one value and the schema another.
 */
export function readSimple(candidate: unknown): { read: Record<string, unknown>; task?: Task } | undefined {
  if (typeof candidate !== "object" || candidate === null) return undefined;
  const prototype = Object.getPrototypeOf(candidate);
  if (prototype !== Object.prototype && prototype !== null) return undefined;
  const keys = Object.keys(candidate);
  if (keys.length === 0 || keys.some((key) => !SIMPLE.has(key))) return undefined;
  const fields = candidate as Record<string, unknown>;
  const read: Record<string, unknown> = {};
  let valid = true;
  for (const name of SIMPLE_FIELDS) {
    if (!Object.hasOwn(fields, name)) continue;
    const value = fields[name];
    read[name] = value;
    valid &&= simpleFieldValid(name, value);
  }
  return valid && read.id !== undefined ? { read, task: read as unknown as Task } : { read };
}

function simpleFieldValid(name: (typeof SIMPLE_FIELDS)[number], value: unknown): boolean {
  switch (name) {
    case "id":
    case "key":
      return typeof value === "string" && nameProblem(value) === undefined;
    case "group":
      return typeof value === "string" && (value === "" || nameProblem(value) === undefined);
    case "priority":
      return typeof value === "number" && Number.isFinite(value);
    case "weight":
      return typeof value === "number" && Number.isFinite(value) && value > 0;
  }
}

function badTask(index: number, candidate: unknown, problem: string): EschedulerError {
  const id = (candidate as { id?: unknown } | null)?.id;
  const named = typeof id === "string" ? ` (id ${JSON.stringify(id)})` : "";
  return new EschedulerError("ERR_BAD_TASK", `generator task #${index}${named}: ${problem}`);
}

function issueText(issue: z.core.$ZodIssue): string {
  const path = issue.path.map(String).join(".");
  // The payload check names its own path (payload.a[2]); zod's issues need it prefixed.
  return path && !issue.message.startsWith(path) ? `${path} ${issue.message}` : issue.message;
}

/** Why `value` would not survive JSON.stringify/parse unchanged, or undefined when it would. */
function jsonProblem(value: unknown, path: string, ancestors: Set<object>): string | undefined {
  switch (typeof value) {
    case "string":
    case "boolean":
      return undefined;
    case "number":
      return Number.isFinite(value) ? undefined : `${path} is ${value}, which JSON cannot hold`;
    case "undefined":
      return undefined;
    case "object": {
      if (value === null) return undefined;
      if (ancestors.has(value)) return `${path} refers to itself (circular)`;
      const isArray = Array.isArray(value);
      const prototype = Object.getPrototypeOf(value);
      if (!isArray && prototype !== Object.prototype && prototype !== null) {
        return `${path} is a ${value.constructor?.name ?? "non-plain object"}, not plain JSON`;
      }
      ancestors.add(value);
      try {
        if (isArray) {
          for (let i = 0; i < value.length; i++) {
            if (value[i] === undefined) return `${path}[${i}] is undefined, which JSON cannot hold`;
            const problem = jsonProblem(value[i], `${path}[${i}]`, ancestors);
            if (problem) return problem;
          }
        } else {
          for (const [field, item] of Object.entries(value)) {
            const problem = jsonProblem(item, `${path}.${field}`, ancestors);
            if (problem) return problem;
          }
        }
      } finally {
        ancestors.delete(value);
      }
      return undefined;
    }
    default:
      return `${path} is a ${typeof value}, which JSON cannot hold`;
  }
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "object") return `a ${value.constructor?.name ?? "object"}`;
  return typeof value;
}
