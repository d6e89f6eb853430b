import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { AUTO_CORDON_ACTOR } from "../../../src/master/auto-cordon.js";
import { withRestartPolicy } from "../../../src/master/escalation.js";
import { FailureTracker } from "../../../src/master/failure-tracker.js";
import { FencedWriter, leaderFence } from "../../../src/master/index.js";
import { LeaseSession, type Logger } from "../../../src/node/index.js";
import { resetTask, uncordon } from "../../../src/operator/index.js";
import { testSpace, waitFor } from "../../helpers/context.js";

const POLICY = { limit: 2, window: 60_000, quarantineAfter: 2 };

function recordingLogger(): { logger: Logger; warnings: Array<Record<string, unknown>> } {
  const warnings: Array<Record<string, unknown>> = [];
  const logger = pino(
    { level: "warn" },
    { write: (line: string) => void warnings.push(JSON.parse(line) as Record<string, unknown>) },
  );
  return { logger, warnings };
}

let terms = 0;
/** A leader's failure tracker (a term of its own) with auto-cordon after `after` and tasks t1–t3. */
async function leader(label: string, space = testSpace(label), after = 1) {
  const { client, keys } = space;
  const electionKey = keys.electionCandidate((0x5000 + ++terms).toString(16));
  const created = await client.put(electionKey).value("m1").exec();
  const writer = new FencedWriter(client, leaderFence(electionKey, created.header.revision));
  const { logger, warnings } = recordingLogger();
  const tracker = new FailureTracker(client, keys, writer, {
    defaults: POLICY,
    logger,
    onEscalation: () => {},
    autoCordonAfter: after,
  });
  const stop = new AbortController();
  await tracker.start(stop.signal);
  tracker.observe(
    new Map(
      ["t1", "t2", "t3"].map((id) => [
        id,
        withRestartPolicy({ task: { id }, value: JSON.stringify({ id }), bytes: 10 }, POLICY).escalation,
      ]),
    ),
    undefined,
  );
  const close = async () => {
    stop.abort();
    await tracker.close();
  };
  return { ...space, tracker, warnings, close };
}

describe("the leader's failure records (real etcd)", () => {
  it("skips hand-written bad records with one warning, records a worker's exhausted failure with its error, and hears a reset", async () => {
    const { client, keys, root } = testSpace("failures");
    const electionKey = keys.electionCandidate("4321");
    const created = await client.put(electionKey).value("m1").exec();
    const writer = new FencedWriter(client, leaderFence(electionKey, created.header.revision));
    await client.put(keys.failure("junk")).value("not json");
    await client.put(keys.failure("shape")).value(JSON.stringify({ fingerprint: 3, workers: [] }));
    const { logger, warnings } = recordingLogger();
    const escalations: string[] = [];
    const tracker = new FailureTracker(client, keys, writer, {
      defaults: POLICY,
      logger,
      onEscalation: (reason) => escalations.push(reason),
    });
    const stop = new AbortController();
    try {
      await tracker.start(stop.signal);
      expect(tracker.records().size).toBe(0);
      expect(warnings.filter((w) => w.msg === "bad record in etcd").map((w) => w.key)).toEqual([
        keys.failure("junk"),
        keys.failure("shape"),
      ]);

      const { escalation } = withRestartPolicy(
        { task: { id: "t1" }, value: '{"id":"t1"}', bytes: 11 },
        POLICY,
      );
      tracker.observe(new Map([["t1", escalation]]), undefined);
      const session = await LeaseSession.grant(client, { ttlMs: 5_000 });
      const failed = {
        state: "failed",
        attempt: 2,
        since: new Date().toISOString(),
        error: "disk full on w2",
        failures: 2,
        exhausted: true,
      };
      await session.lease.put(keys.status("w2", "t1")).value(JSON.stringify(failed));
      const stored = await waitFor("the failure record of t1", async () =>
        client.get(keys.failure("t1")).json(),
      );
      expect(stored).toMatchObject({
        fingerprint: escalation.fingerprint,
        workers: { w2: { failures: 2, error: "disk full on w2", at: failed.since } },
      });
      expect(escalations).toEqual(["failure"]);

      const reset = await resetTask(client, root, "t1", { by: "alice@ops", reason: "disk replaced" });
      expect(reset).toEqual({
        task: "t1",
        reset: true,
        failedOn: [{ worker: "w2", error: "disk full on w2" }],
      });
      await waitFor("the reset reaches the leader", async () => escalations.includes("reset"));
      expect(tracker.records().has("t1")).toBe(false);
      await session.close();
    } finally {
      stop.abort();
      await tracker.close();
    }
  });

  it("takes no failure from a status written by hand without a lease, before its start or after", async () => {
    const space = testSpace("forged-status");
    const { client, keys } = space;
    const exhausted = (error: string) =>
      JSON.stringify({
        state: "failed",
        attempt: 1,
        since: new Date().toISOString(),
        error,
        failures: 2,
        exhausted: true,
      });
    await client.put(keys.status("nobody", "t1")).value(exhausted("forged before"));
    const term = await leader("forged-status", space);
    const session = await LeaseSession.grant(client, { ttlMs: 5_000 });
    try {
      await client.put(keys.status("ghost", "t1")).value(exhausted("forged after"));
      // A worker's own report, written after the forged ones, is recorded: the tracker has seen them all.
      await session.lease.put(keys.status("w2", "t2")).value(exhausted("real"));
      await waitFor("the failure record of t2", async () => client.get(keys.failure("t2")).json());
      expect(await client.get(keys.failure("t1")).string()).toBeNull();
      expect([...term.tracker.records().keys()]).toEqual(["t2"]);
    } finally {
      await session.close();
      await term.close();
    }
  });

  it("cordons a worker automatically once K tasks reached their limit there and run elsewhere; a task failing everywhere condemns nobody", async () => {
    const term = await leader("auto-cordon", undefined, 2);
    const { client, keys, tracker } = term;
    const session = await LeaseSession.grant(client, { ttlMs: 5_000 });
    try {
      for (const worker of ["w1", "w2"])
        await session.lease.put(keys.worker(worker)).value(JSON.stringify({ name: worker }));
      const status = (state: string, error?: string) =>
        JSON.stringify({
          state,
          attempt: 2,
          since: new Date().toISOString(),
          ...(error ? { error, failures: 2, exhausted: true } : {}),
        });
      const put = (worker: string, task: string, value: string) =>
        session.lease.put(keys.status(worker, task)).value(value);
      // t3 fails on both workers (a poison task): it runs nowhere and condemns neither.
      await put("w1", "t3", status("failed", "bad payload"));
      await put("w2", "t3", status("failed", "bad payload"));
      await put("w2", "t1", status("failed", "disk full"));
      await put("w2", "t2", status("failed", "disk full"));
      await waitFor("t1 and t2 recorded as exhausted on w2", () =>
        ["t1", "t2"].every((id) => tracker.records().get(id)?.workers.w2?.exhaustedAt !== undefined),
      );
      await put("w1", "t1", status("running"));
      // One task running elsewhere is not enough: the history's revision proves no cordon was written
      // before t2 ran on w1 (the cordon's create revision comes after t2's running status).
      const t2Running = await put("w1", "t2", status("running"));
      const cordon = await waitFor("w2 cordoned automatically", async () => {
        const response = await client.get(keys.cordon("w2")).exec();
        return response.kvs[0];
      });
      expect(Number(cordon.create_revision)).toBeGreaterThan(Number(t2Running.header.revision));
      expect(JSON.parse(cordon.value.toString())).toMatchObject({
        mode: "cordon",
        by: AUTO_CORDON_ACTOR,
        reason: "auto: 2 tasks failed here that run elsewhere (t1, t2)",
      });
      expect(await client.get(keys.cordon("w1")).string()).toBeNull();
      const audit = await client.getAll().prefix(keys.auditPrefix).strings();
      expect(
        Object.values(audit).map((value) => JSON.parse(value) as { by: string; worker: string }),
      ).toEqual([expect.objectContaining({ action: "cordon", by: AUTO_CORDON_ACTOR, worker: "w2" })]);
    } finally {
      await term.close();
      await session.close();
    }
  });

  describe("the automatic cordon's guards", () => {
    const status = (state: string) =>
      JSON.stringify({
        state,
        attempt: 2,
        since: new Date().toISOString(),
        ...(state === "failed" ? { error: "db down", failures: 2, exhausted: true } : {}),
      });

    it("an outage on most workers cordons none of them; an operator's uncordon outweighs the failures before it, for a new leader too", async () => {
      const first = await leader("outage");
      const { client, keys, root } = first;
      const session = await LeaseSession.grant(client, { ttlMs: 10_000 });
      const put = (worker: string, task: string, state: string) =>
        session.lease.put(keys.status(worker, task)).value(status(state));
      try {
        for (const worker of ["w1", "w2", "w3"])
          await session.lease.put(keys.worker(worker)).value(JSON.stringify({ name: worker }));
        // An outage: each task fails on its worker until its limit; once it ends, each runs on the next worker.
        const outage = [
          ["w1", "w2", "t1"],
          ["w2", "w3", "t2"],
          ["w3", "w1", "t3"],
        ] as const;
        for (const [failed, , task] of outage) await put(failed, task, "failed");
        await waitFor("every task exhausted where it failed", () =>
          outage.every(([failed, , task]) => first.tracker.records().get(task)?.workers[failed]?.exhaustedAt),
        );
        for (const [failed, runs, task] of outage) {
          await client.delete().key(keys.status(failed, task));
          await put(runs, task, "running");
        }
        await waitFor("the outage warning", () =>
          first.warnings.find(
            (w) => w.msg === "tasks failed on most workers: an outage, not a bad host; no automatic cordon",
          ),
        );
        expect(await client.getAll().prefix(keys.cordonsPrefix).keys()).toEqual([]);
        await first.close();

        // w1 and w3 recover (their failures are reset); w2 alone is suspect and is cordoned; the operator uncordons it.
        await resetTask(client, root, "t1", {});
        await resetTask(client, root, "t3", {});
        const second = await leader("second", first);
        await waitFor("w2 cordoned automatically", async () => client.get(keys.cordon("w2")).string());
        await second.close();
        await uncordon(client, root, "w2", { by: "alice@ops", reason: "checked the host" });

        // A new leader sees the same failure of t2 on w2 (before the uncordon): it leaves w2 alone.
        const third = await leader("third", first);
        await put("w1", "t2", "running");
        await put("w3", "t1", "failed");
        await waitFor("t1 exhausted on w3", () => third.tracker.records().get("t1")?.workers.w3?.exhaustedAt);
        await put("w2", "t1", "running");
        await waitFor("w3 cordoned automatically", async () => client.get(keys.cordon("w3")).string());
        expect(await client.get(keys.cordon("w2")).string()).toBeNull();
        await third.close();
      } finally {
        await session.close();
      }
    });
  });
});
