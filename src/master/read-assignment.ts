import type { Etcd3, IRangeRequest } from "etcd3";
import {
  hasLease,
  type KeyLayout,
  keyText,
  type Logger,
  prefixRange,
  readRangesPaged,
  readRecord,
  workerInfoSchema,
} from "../node/index.js";
import type { WriteOp } from "./batches.js";
import type { CurrentAssignment } from "./changes.js";
import { type Controls, controlRanges, parseControls } from "./controls.js";
import { type RegisteredWorker, registeredWorker } from "./registered.js";

/** A key-value as a schedule parses it: an etcd IKeyValue, or the view's (its key as text when UTF-8). */
export interface ReadKv {
  key: Buffer | string;
  value: Buffer | string;
  lease: string;
  create_revision: string | number;
}

/** What a schedule reads: workers, every task key and the controls, as of one revision. */
export interface AssignmentRead {
  workers: RegisteredWorker[];
  current: CurrentAssignment;
  controls: Controls;
  junk: WriteOp[];
  revision: number;
  /** Where it came from: the leader's view, or a read of etcd (`escheduler plan`, or a view that fell behind). */
  source?: "view" | "etcd";
}

/** The ranges a schedule reads, in the order `parseAssignment` takes them. */
export function assignmentRanges(keys: KeyLayout): IRangeRequest[] {
  return [prefixRange(keys.workersPrefix), prefixRange(keys.tasksPrefix), ...controlRanges(keys)];
}

/**
 * Live workers (with capacity and labels), every task key and the operator's controls, all at one revision.
 * Registrations without a lease are ignored; task keys that are not UTF-8 come back as deletes.
 */
export async function readAssignment(
  client: Etcd3,
  keys: KeyLayout,
  logger: Logger,
): Promise<AssignmentRead> {
  // Paged, at one revision: a 100,000-task assignment is not one range response.
  const read = await readRangesPaged(client, assignmentRanges(keys));
  return parseAssignment(keys, read.ranges, read.revision, logger);
}

/** The assignment from the key-values of `assignmentRanges` read at `revision` (from etcd or the view). */
export function parseAssignment(
  keys: KeyLayout,
  ranges: ReadonlyArray<readonly ReadKv[]>,
  revision: number,
  logger: Logger,
): AssignmentRead {
  const [workerKvs = [], taskKvs = [], ...controlKvs] = ranges;
  const workers: RegisteredWorker[] = [];
  for (const kv of workerKvs) {
    const key = keyText(kv.key, logger);
    const name = key === undefined ? undefined : keys.parseWorker(key);
    if (!name || key === undefined || !hasLease(kv, logger)) continue;
    const info = readRecord(workerInfoSchema, key, kv.value, logger);
    workers.push(registeredWorker(name, info, logger, Number(kv.create_revision)));
  }
  const current: CurrentAssignment = new Map();
  const junk: WriteOp[] = [];
  // Keys come in key order, a worker's together: its map is looked up once per run of its keys.
  let worker: string | undefined;
  let ids = new Map<string, string>();
  for (const kv of taskKvs) {
    const key = keyText(kv.key, logger);
    if (key === undefined) {
      // Only a key held as bytes can fail to be UTF-8.
      const raw = Buffer.from(kv.key);
      junk.push({ type: "delete", key: raw.toString(), rawKey: raw });
      continue;
    }
    const parts = keys.parseTask(key);
    if (!parts) continue;
    if (parts.worker !== worker) {
      worker = parts.worker;
      ids = current.get(worker) ?? new Map<string, string>();
      current.set(worker, ids);
    }
    ids.set(parts.taskId, kv.value.toString());
  }
  return {
    workers,
    current,
    controls: parseControls(keys, controlKvs, logger),
    junk,
    revision,
  };
}
