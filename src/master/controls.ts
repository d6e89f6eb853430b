import type { Etcd3, IKeyValue, IRangeRequest } from "etcd3";
import type { WorkerSpec } from "../balancer/index.js";
import { EschedulerError } from "../errors.js";
import { parsePins } from "./pins.js";
import type { ReadKv } from "./read-assignment.js";
import { parseHoldKeys } from "./held-tasks.js";
import {
  type CordonRecord,
  type HeldRecord,
  cordonRecordSchema,
  hasLease,
  type KeyLayout,
  keyText,
  type Logger,
  type PausedRecord,
  pausedRecordSchema,
  type PinRecord,
  prefixRange,
  readRangesPaged,
  readRecord,
  repairCordonRecord,
  repairPausedRecord,
  silentLogger,
} from "../node/index.js";

/** The operator's cordon/drain records and the workers' own draining marks, by worker name. */
export interface Cordons {
  records: Map<string, CordonRecord>;
  /** Workers draining themselves (their mark lives under their lease). */
  draining: Set<string>;
}

/** What the operator set that a schedule obeys, read at the schedule's revision. */
export interface Controls {
  cordons: Cordons;
  paused?: PausedRecord;
  /** Task id → the operator's pin (`escheduler task pin`). */
  pins?: Map<string, PinRecord>;
  /** `/R/held/<worker>`: crashed workers whose tasks wait for them (`--reassign-delay`). */
  holds?: Map<string, HeldRecord>;
  /** `/R/left/<worker>`: workers that stopped on purpose (their tasks are never held). */
  left?: Set<string>;
}

/** Cordons from raw key-values; draining marks without a lease (written by hand) are ignored. */
export function parseCordons(
  keys: KeyLayout,
  records: Iterable<{ key: Buffer | string; value: Buffer | string }>,
  marks: Iterable<{ key: Buffer | string; lease: string }>,
  logger: Logger = silentLogger,
): Cordons {
  const cordons: Cordons = { records: new Map(), draining: new Set() };
  for (const kv of records) {
    const key = keyText(kv.key, logger);
    const worker = key === undefined ? undefined : keys.parseCordon(key);
    if (!worker || key === undefined) continue;
    const record = readRecord(cordonRecordSchema, key, kv.value, logger, { repair: repairCordonRecord });
    if (record) cordons.records.set(worker, record);
  }
  for (const kv of marks) {
    const key = keyText(kv.key, logger);
    const worker = key === undefined ? undefined : keys.parseDraining(key);
    if (worker && hasLease(kv, logger)) cordons.draining.add(worker);
  }
  return cordons;
}

/** How the leader plans `worker`: `drain` (hand everything off), `cordon` (nothing new) or undefined (normal). */
export function cordonMode(cordons: Cordons, worker: string): CordonRecord["mode"] | undefined {
  if (cordons.draining.has(worker)) return "drain";
  return cordons.records.get(worker)?.mode;
}

/**
 * The planner's workers: a draining worker (operator's `drain` or its own mark) is left out, so its
 * tasks are handed off as if it were gone; a cordoned one keeps what it has and takes nothing new.
 */
export function plannerWorkers(
  workers: ReadonlyArray<{ name: string; capacity?: number; labels?: Record<string, string> }>,
  cordons: Cordons,
): WorkerSpec[] {
  return workers.flatMap((worker) => {
    const mode = cordonMode(cordons, worker.name);
    if (mode === "drain") return [];
    return [mode === "cordon" ? { ...worker, cordoned: true } : { ...worker }];
  });
}

/** The ranges that hold the controls: cordon records, draining marks, the pause key, pins, holds and left marks (read them with `parseControls`). */
export function controlRanges(keys: KeyLayout): IRangeRequest[] {
  return [
    prefixRange(keys.cordonsPrefix),
    prefixRange(keys.drainingPrefix),
    { key: Buffer.from(keys.paused) },
    prefixRange(keys.pinsPrefix),
    prefixRange(keys.heldPrefix),
    prefixRange(keys.leftPrefix),
  ];
}

/** The controls from the key-values of `controlRanges`, in that order. */
export function parseControls(
  keys: KeyLayout,
  [records = [], marks = [], paused = [], pins = [], held = [], left = []]: ReadonlyArray<readonly ReadKv[]>,
  logger: Logger = silentLogger,
): Controls {
  const pausedRecord = readRecord(pausedRecordSchema, keys.paused, paused[0]?.value, logger, {
    repair: repairPausedRecord,
  });
  return {
    cordons: parseCordons(keys, records, marks, logger),
    ...(pausedRecord ? { paused: pausedRecord } : {}),
    pins: parsePins(keys, pins, logger),
    ...parseHoldKeys(keys, held, left, logger),
  };
}

/** Cordons, draining marks, the pause record and pins, read at one revision (`revision` when given). */
export async function readControls(
  client: Etcd3,
  keys: KeyLayout,
  revision?: number,
  logger: Logger = silentLogger,
): Promise<Controls> {
  const read = await readRangesPaged(client, controlRanges(keys), revision === undefined ? {} : { revision });
  return parseControls(keys, read.ranges, logger);
}

/** Why a schedule cannot run now: ERR_PAUSED with the operator's reason. */
export function pausedError(record: PausedRecord): EschedulerError {
  return new EschedulerError(
    "ERR_PAUSED",
    `schedules are paused${record.reason ? ` (${record.reason})` : ""}`,
  );
}

/** Registered workers planned as cordoned and as draining. */
export function cordonCounts(
  workers: ReadonlyArray<{ name: string }>,
  controls: Controls,
): { cordoned: number; draining: number } {
  const modes = workers.map((worker) => cordonMode(controls.cordons, worker.name));
  return {
    cordoned: modes.filter((mode) => mode === "cordon").length,
    draining: modes.filter((mode) => mode === "drain").length,
  };
}
