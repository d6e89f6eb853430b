import { parseRecord, type Task } from "../node/index.js";
import type { TaskSpec } from "./task-runner.js";

/** Reads `/R/task/<me>/<id>`'s value; a value that is not a task becomes a problem shown as `failed`. */
export function taskSpec(taskId: string, value: string, revision: number): TaskSpec {
  const parsed = parseRecord<Task>(value);
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    return {
      problem: `task ${JSON.stringify(taskId)}: stored value is not a JSON object`,
      fingerprint: value,
    };
  }
  if (parsed.id !== undefined && parsed.id !== taskId) {
    return {
      problem: `task ${JSON.stringify(taskId)}: stored value has another id ${JSON.stringify(parsed.id)}`,
      fingerprint: value,
    };
  }
  // The raw value is the fingerprint: any rewrite with a different value restarts the task, except a
  // change of the restart policy alone (the master writes it last; it says when to stop retrying).
  const { restart, ...rest } = parsed;
  const fingerprint = restart === undefined ? value : JSON.stringify(rest);
  // A value naming its id is a task as it is (a fresh object from the parse): no copy to make.
  const task = parsed.id === taskId ? parsed : { ...parsed, id: taskId };
  return { task, fingerprint, revision };
}
