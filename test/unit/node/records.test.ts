import fc from "fast-check";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import type { ZodType } from "zod";
import {
  barrierLeftSchema,
  cordonRecordSchema,
  drainingMarkSchema,
  hasLease,
  historyRecordSchema,
  keyText,
  pausedRecordSchema,
  planRecordSchema,
  readRecord,
  repairCordonRecord,
  repairPausedRecord,
  scheduleRequestRecordSchema,
  taskStatusSchema,
  workerInfoSchema,
} from "../../../src/node/index.js";

function recordingLogger() {
  const warnings: Array<Record<string, unknown>> = [];
  const logger = pino({ level: "warn" }, { write: (line: string) => void warnings.push(JSON.parse(line)) });
  return { logger, warnings };
}

let unique = 0;
const key = () => `/unit-records/${unique++}`;

const SCHEMAS: ZodType[] = [
  taskStatusSchema,
  workerInfoSchema,
  planRecordSchema,
  cordonRecordSchema,
  drainingMarkSchema,
  pausedRecordSchema,
  scheduleRequestRecordSchema,
  historyRecordSchema,
];

describe("readRecord", () => {
  it("returns a valid record as it is (unknown fields dropped) and warns about nothing", () => {
    const { logger, warnings } = recordingLogger();
    const value = JSON.stringify({ state: "running", attempt: 2, since: "t", extra: { deep: 1 } });
    expect(readRecord(taskStatusSchema, key(), value, logger)).toEqual({
      state: "running",
      attempt: 2,
      since: "t",
    });
    expect(readRecord(taskStatusSchema, key(), null, logger)).toBeUndefined();
    expect(warnings).toEqual([]);
  });

  it("skips a bad record with one warning per key and value, however often it is read", () => {
    const { logger, warnings } = recordingLogger();
    const bad = key();
    for (let i = 0; i < 3; i++)
      expect(readRecord(planRecordSchema, bad, '{"workers":5}', logger)).toBeUndefined();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ key: bad, action: "skipped" });
    expect(String(warnings[0].problem)).toMatch(/^epoch: .* \(and 3 more\)$/);
    // Another bad value under the same key is news.
    readRecord(planRecordSchema, bad, "not json", logger);
    expect(warnings).toHaveLength(2);
    expect(warnings[1]).toMatchObject({ key: bad, problem: "not JSON" });
  });

  it("repairs a pause or a cordon to its safe reading", () => {
    const { logger, warnings } = recordingLogger();
    const paused = readRecord(pausedRecordSchema, key(), '{"reason":{"a":1},"at":"t"}', logger, {
      repair: repairPausedRecord,
    });
    expect(paused).toEqual({ at: "t" });
    expect(readRecord(pausedRecordSchema, key(), "", logger, { repair: repairPausedRecord })).toEqual({
      at: "",
    });
    const cordon = readRecord(cordonRecordSchema, key(), '{"mode":"drain","reason":[]}', logger, {
      repair: repairCordonRecord,
    });
    expect(cordon).toEqual({ mode: "drain", at: "" });
    expect(
      readRecord(cordonRecordSchema, key(), '{"mode":7}', logger, { repair: repairCordonRecord }),
    ).toEqual({
      mode: "cordon",
      at: "",
    });
    expect(warnings.map((warning) => warning.action)).toEqual([
      "repaired",
      "repaired",
      "repaired",
      "repaired",
    ]);
  });

  it("reads plain text records (the barrier marker) without JSON", () => {
    const { logger } = recordingLogger();
    const at = new Date().toISOString();
    expect(readRecord(barrierLeftSchema, key(), at, logger, { text: true })).toBe(at);
    expect(readRecord(barrierLeftSchema, key(), "junk", logger, { text: true })).toBeUndefined();
  });

  it("never throws, whatever JSON a script stored, and returns only what the schema allows", () => {
    const { logger } = recordingLogger();
    fc.assert(
      fc.property(fc.jsonValue(), fc.integer({ min: 0, max: SCHEMAS.length - 1 }), (value, index) => {
        const schema = SCHEMAS[index];
        const record = readRecord(schema, key(), JSON.stringify(value), logger);
        if (record !== undefined) expect(schema.safeParse(record).success).toBe(true);
      }),
    );
  });
});

describe("lease and key checks", () => {
  it("a key without a lease is refused once, a leased one passes", () => {
    const { logger, warnings } = recordingLogger();
    const name = key();
    expect(hasLease({ key: Buffer.from(name), lease: "0" }, logger)).toBe(false);
    expect(hasLease({ key: Buffer.from(name), lease: "0" }, logger)).toBe(false);
    expect(hasLease({ key: Buffer.from(name), lease: "7587" }, logger)).toBe(true);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ key: name, action: "ignored" });
  });

  it("a key that is not valid UTF-8 has no text; one that merely contains U+FFFD has", () => {
    const { logger, warnings } = recordingLogger();
    expect(keyText(Buffer.from([0x2f, 0x61, 0xff]), logger)).toBeUndefined();
    expect(keyText(Buffer.from("/a/\uFFFD"), logger)).toBe("/a/\uFFFD");
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ keyHex: "2f61ff" });
  });
});
