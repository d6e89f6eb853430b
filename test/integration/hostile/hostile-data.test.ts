/**
 * Hostile data: what a buggy script or a careless operator writes straight into etcd. Every reader
 * validates what it reads; a bad record is skipped or repaired with one warning naming the key, and
 * keys that must carry a lease but do not are ignored.
 */
import { type Etcd3 } from "etcd3";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { historyLine } from "../../../src/cli/operator.js";
import { readStatus } from "../../../src/cli/status.js";
import { renderStatus } from "../../../src/cli/status-view.js";
import { ConsoleFeed } from "../../../src/console/feed.js";
import { readControls } from "../../../src/master/controls.js";
import type { ScheduleResult } from "../../../src/master/index.js";
import { type KeyLayout, LeaseSession, type Logger, registerWorker } from "../../../src/node/index.js";
import { readHistory } from "../../../src/operator/index.js";
import {
  clusterReadiness,
  readClusterView,
  readLeader,
  workerReadiness,
} from "../../../src/readiness/index.js";
import { testSpace, waitFor } from "../../helpers/context.js";
import { assignment, FakeWorker, tasks, testMaster } from "../master/fixtures.js";

/** Long enough that a loaded machine does not end a lease (and a leadership) mid-test. */
const LEASE_MS = 10_000;

/** A logger that keeps every warning it is given. */
function recordingLogger(): { logger: Logger; warnings: Array<Record<string, unknown>> } {
  const warnings: Array<Record<string, unknown>> = [];
  const logger = pino(
    { level: "warn" },
    { write: (line: string) => void warnings.push(JSON.parse(line) as Record<string, unknown>) },
  );
  return { logger, warnings };
}

/** A JSON array nested `depth` deep: parses fine, overflows the stack of anything recursive. */
const nested = (depth: number) => "[".repeat(depth) + "]".repeat(depth);
const DEEP = 200_000;

/** One healthy worker w1 (under a lease) running t1, the barrier left, a good plan and a good history record. */
async function healthyFleet(client: Etcd3, keys: KeyLayout): Promise<LeaseSession> {
  const session = await LeaseSession.grant(client, { ttlMs: 5_000 });
  const now = new Date().toISOString();
  await session.lease
    .put(keys.worker("w1"))
    .value(JSON.stringify({ name: "w1", host: "h", pid: 1, version: "v", startedAt: now }));
  await client.put(keys.task("w1", "t1")).value(JSON.stringify({ id: "t1" }));
  await session.lease
    .put(keys.status("w1", "t1"))
    .value(JSON.stringify({ state: "running", attempt: 1, since: now }));
  await client.put(keys.barrierLeft).value(now);
  await client
    .put(keys.plan)
    .value(JSON.stringify({ epoch: 1, leader: "m1", at: now, workers: ["w1"], tasks: 1, moved: 0 }));
  await client.put(keys.history(1)).value(
    JSON.stringify({
      at: now,
      leader: "m1",
      epoch: 1,
      outcome: "applied",
      reasons: ["start"],
      workers: ["w1"],
      tasks: 1,
      added: 1,
      removed: 0,
      moved: 0,
      unassigned: 0,
      moves: [{ id: "t1", to: "w1" }],
    }),
  );
  return session;
}

interface ShapeCase {
  name: string;
  key: (keys: KeyLayout) => string;
  value: string;
  /** Written under w1's lease (a key that must have one). */
  leased?: boolean;
  /** What the report shows once the record was skipped or repaired. */
  check?: (report: Awaited<ReturnType<typeof readStatus>>["report"]) => void;
}

const SHAPES: ShapeCase[] = [
  {
    name: "/R/plan is {}",
    key: (keys) => keys.plan,
    value: "{}",
    check: (report) => expect(report.plan).toBeNull(),
  },
  {
    name: '/R/plan is {"workers":5}',
    key: (keys) => keys.plan,
    value: '{"workers":5}',
    check: (report) => expect(report.plan).toBeNull(),
  },
  {
    name: "a /R/paused reason that is an object",
    key: (keys) => keys.paused,
    value: '{"reason":{"why":"x"},"at":"2026-01-01T00:00:00Z"}',
    // Still paused: the key's presence is what pauses.
    check: (report) => expect(report.paused).toEqual({ at: "2026-01-01T00:00:00Z" }),
  },
  {
    name: "a /R/paused reason nested 200,000 deep",
    key: (keys) => keys.paused,
    value: `{"reason":${nested(DEEP)},"at":"2026-01-01T00:00:00Z"}`,
    check: (report) => expect(report.paused).toEqual({ at: "2026-01-01T00:00:00Z" }),
  },
  {
    name: "a /R/cordon/<w> reason that is an object",
    key: (keys) => keys.cordon("w1"),
    value: '{"mode":"cordon","reason":{"why":"x"},"at":"2026-01-01T00:00:00Z"}',
    check: (report) => {
      expect(report.workers[0]).toMatchObject({ name: "w1", cordon: "cordon" });
      expect(report.workers[0].cordonReason).toBeUndefined();
    },
  },
  {
    name: "a /R/cordon/<w> reason nested 200,000 deep",
    key: (keys) => keys.cordon("w1"),
    value: `{"mode":"drain","reason":${nested(DEEP)},"at":"2026-01-01T00:00:00Z"}`,
    check: (report) => {
      expect(report.workers[0]).toMatchObject({ name: "w1", cordon: "drain" });
      expect(report.workers[0].cordonReason).toBeUndefined();
    },
  },
  { name: "a history record {}", key: (keys) => keys.history(2), value: "{}" },
  {
    name: 'a history record with "moves":"x"',
    key: (keys) => keys.history(2),
    value: JSON.stringify({
      at: "2026-01-01T00:00:00Z",
      leader: "m1",
      epoch: 1,
      outcome: "refused",
      reasons: [],
      workers: [],
      tasks: 0,
      added: 0,
      removed: 0,
      moved: 0,
      unassigned: 0,
      moves: "x",
    }),
    check: (report) => expect(report.refused).toBeNull(),
  },
  {
    name: 'a registration with "host":5',
    key: (keys) => keys.worker("w1"),
    value: '{"name":"w1","host":5}',
    leased: true,
    check: (report) => expect(report.workers[0]).toMatchObject({ name: "w1", registered: true }),
  },
  {
    name: 'a pin {"worker":5}',
    key: (keys) => keys.pin("t1"),
    value: '{"worker":5,"at":""}',
    check: (report) => expect(report.pins).toEqual([]),
  },
  {
    name: 'a status {"state":5}',
    key: (keys) => keys.status("w1", "t1"),
    value: '{"state":5}',
    leased: true,
    check: (report) => expect(report.workers[0].notRunning).toMatchObject([{ id: "t1", state: "unstarted" }]),
  },
];

describe("hostile data: well-formed JSON of the wrong shape", () => {
  it.each(SHAPES)(
    "$name: status, probe, history and the console read on, with one warning",
    async (shape) => {
      const { client, keys, root } = testSpace("hostile-shape");
      const session = await healthyFleet(client, keys);
      const key = shape.key(keys);
      if (shape.leased) await session.lease.put(key).value(shape.value);
      else await client.put(key).value(shape.value);
      const { logger, warnings } = recordingLogger();

      for (let round = 0; round < 2; round++) {
        const { report } = await readStatus(client, root, logger);
        expect(() => renderStatus(report)).not.toThrow();
        expect(() => JSON.stringify(report)).not.toThrow();
        shape.check?.(report);
        const view = await readClusterView(client, keys, undefined, logger);
        expect(() => clusterReadiness(view)).not.toThrow();
        const own = await readClusterView(client, keys, { worker: "w1" }, logger);
        expect(() => workerReadiness("w1", own)).not.toThrow();
        for (const task of [undefined, "t1"]) {
          const entries = await readHistory(client, root, { task, logger });
          for (const entry of entries) expect(() => historyLine(entry, task)).not.toThrow();
          expect(() => JSON.stringify(entries)).not.toThrow();
        }
      }
      const feed = new ConsoleFeed({ client, root, logger, admin: false });
      const snapshot = await feed.snapshot();
      expect(() => JSON.stringify(snapshot)).not.toThrow();
      expect(() => JSON.stringify(feed.search("t1"))).not.toThrow();
      feed.stop();

      const aboutKey = warnings.filter((warning) => warning.key === key);
      expect(aboutKey).toHaveLength(1);
      expect(warnings).toHaveLength(1);
      await session.close();
    },
  );
});

describe("hostile data: keys that must carry a lease and do not", () => {
  it("a registration without a lease (/R/worker/fake-1) gets no tasks and is not reported as registered", async () => {
    const space = testSpace("hostile-fake-worker");
    await space.client.put(space.keys.worker("fake-1")).value(JSON.stringify({ name: "fake-1" }));
    await FakeWorker.start(space.client, space.keys, "w1", { ttlMs: LEASE_MS });
    const master = testMaster(space, () => tasks(4), { ttlMs: LEASE_MS });
    const schedules: ScheduleResult[] = [];
    master.on("scheduled", (result) => schedules.push(result));
    await master.start();
    await waitFor("the first schedule", () => schedules.length > 0);
    expect(schedules[0]).toMatchObject({ workers: 1, tasks: 4 });
    expect([...(await assignment(space.client, space.keys)).values()]).toEqual(["w1", "w1", "w1", "w1"]);
    const view = await readClusterView(space.client, space.keys);
    expect([...view.workers.keys()]).toEqual(["w1"]);
    await waitFor(
      "the cluster ready",
      async () => clusterReadiness(await readClusterView(space.client, space.keys)).ready,
    );
  });

  it("a status without a lease under a gone worker does not hold its task's hand-off", async () => {
    const space = testSpace("hostile-status-lease");
    // t0 was on a worker that is gone; a script left its status behind without a lease.
    await space.client.put(space.keys.task("gone", "t0")).value(JSON.stringify({ id: "t0" }));
    await space.client
      .put(space.keys.status("gone", "t0"))
      .value(JSON.stringify({ state: "running", attempt: 1, since: new Date().toISOString() }));
    await FakeWorker.start(space.client, space.keys, "w1", { ttlMs: LEASE_MS });
    const master = testMaster(space, () => tasks(1), { ttlMs: LEASE_MS });
    await master.start();
    await waitFor(
      "t0 written to w1",
      async () => (await assignment(space.client, space.keys)).get("t0") === "w1",
    );
  });

  it("a slot key overwritten without a lease does not lock its worker out after a restart", async () => {
    const { client, keys } = testSpace("hostile-slot");
    const info = { name: "w1", host: "h", pid: 1, version: "v", startedAt: new Date().toISOString() };
    const first = await LeaseSession.grant(client, { ttlMs: 5_000 });
    await registerWorker({ client, keys, session: first, info, maxWorkers: 1 });
    await client.put(keys.workerSlot(0)).value("junk");
    await first.close();
    const second = await LeaseSession.grant(client, { ttlMs: 5_000 });
    const { logger, warnings } = recordingLogger();
    await registerWorker({ client, keys, session: second, info, maxWorkers: 1, logger });
    expect(warnings.map((warning) => warning.key)).toEqual([keys.workerSlot(0)]);
    const slot = (await client.get(keys.workerSlot(0)).exec()).kvs[0];
    expect({ value: slot.value.toString(), lease: slot.lease }).toEqual({ value: "w1", lease: second.id });
    await second.close();
  });

  it("a registration left without a lease under the worker's own name does not keep it out", async () => {
    const { client, keys } = testSpace("hostile-own-name");
    await client.put(keys.worker("w1")).value("junk");
    const session = await LeaseSession.grant(client, { ttlMs: 5_000 });
    const info = { name: "w1", host: "h", pid: 1, version: "v", startedAt: new Date().toISOString() };
    await registerWorker({ client, keys, session, info, maxWorkers: 0 });
    expect((await client.get(keys.worker("w1")).exec()).kvs[0].lease).toBe(session.id);
    await session.close();
  });

  it("an election key without a lease neither blocks a campaigning master nor shows as the leader", async () => {
    const space = testSpace("hostile-election");
    await space.client.put(space.keys.electionCandidate("1")).value("evil");
    expect(await readLeader(space.client, space.keys)).toBeUndefined();
    await FakeWorker.start(space.client, space.keys, "w1", { ttlMs: LEASE_MS });
    const master = testMaster(space, () => tasks(2), { name: "m1", ttlMs: LEASE_MS });
    const schedules: ScheduleResult[] = [];
    master.on("scheduled", (result) => schedules.push(result));
    await master.start();
    await waitFor("the master to lead and schedule", () => schedules.length > 0);
    expect(await readLeader(space.client, space.keys)).toBe("m1");
    expect((await readClusterView(space.client, space.keys)).leader).toBe("m1");
  });

  it("a draining mark without a lease does not drain the worker", async () => {
    const { client, keys } = testSpace("hostile-draining");
    await client.put(keys.draining("w1")).value(JSON.stringify({ at: new Date().toISOString() }));
    const { logger, warnings } = recordingLogger();
    expect([...(await readControls(client, keys, undefined, logger)).cordons.draining]).toEqual([]);
    await readControls(client, keys, undefined, logger);
    expect(warnings.filter((warning) => warning.key === keys.draining("w1"))).toHaveLength(1);
  });
});

describe("hostile data: keys as bytes", () => {
  it("a task key that is not valid UTF-8 is deleted by the leader", async () => {
    const space = testSpace("hostile-utf8");
    const badKey = Buffer.concat([
      Buffer.from(space.keys.workerTasksPrefix("w1")),
      Buffer.from([0xff, 0xfe]),
    ]);
    await space.client.kv.put({ key: badKey, value: Buffer.from("{}") });
    await FakeWorker.start(space.client, space.keys, "w1", { ttlMs: LEASE_MS });
    const master = testMaster(space, () => tasks(1), { ttlMs: LEASE_MS });
    const schedules: ScheduleResult[] = [];
    master.on("scheduled", (result) => schedules.push(result));
    await master.start();
    await waitFor(
      "the bad key deleted",
      async () => (await space.client.kv.range({ key: badKey })).kvs.length === 0,
    );
    await master.scheduleNow("again");
    expect(schedules.at(-1)).toMatchObject({ removed: 0, tasks: 1 });
  });

  it("a forged /R/history/zzzz is not the last schedule, nor in the history", async () => {
    const { client, keys, root } = testSpace("hostile-history-leaf");
    const session = await healthyFleet(client, keys);
    const forged = {
      at: "2026-01-01T00:00:00Z",
      leader: "forger",
      epoch: 9,
      outcome: "refused",
      refusal: "forged",
      reasons: [],
      workers: [],
      tasks: 0,
      added: 0,
      removed: 0,
      moved: 0,
      unassigned: 0,
      moves: [],
    };
    await client.put(`${keys.historyPrefix}zzzz`).value(JSON.stringify(forged));
    await client.put(`${keys.historyPrefix}99999999999999999`).value(JSON.stringify(forged));
    const { report } = await readStatus(client, root);
    expect(report.refused).toBeNull();
    expect((await readHistory(client, root)).map((entry) => entry.leader)).toEqual(["m1"]);
    expect((await readHistory(client, root, { limit: 1 })).map((entry) => entry.leader)).toEqual(["m1"]);
    await session.close();
  });
});
