/**
 * The console's in-memory picture (ClusterWatch: one read, then the watch's events) against a fresh
 * `readStatus` of etcd at the same revision, after random puts, deletes, transactions, lease
 * revocations and compactions past a watch cut off from etcd.
 */
import type { Etcd3 } from "etcd3";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readStatus } from "../../../src/cli/status.js";
import type { StatusReport } from "../../../src/cli/status-view.js";
import { ClusterWatch } from "../../../src/cluster-view/index.js";
import { statusReportOf } from "../../../src/console/snapshot.js";
import { createEtcdClient } from "../../../src/node/client.js";
import { KeyLayout, silentLogger } from "../../../src/node/index.js";
import { readAudit, readHistory } from "../../../src/operator/index.js";
import type { ClusterView } from "../../../src/readiness/index.js";
import { testClient, uniqueRoot, waitFor } from "../../helpers/context.js";
import { type EtcdMember, startEtcd } from "../../helpers/etcd.js";
import { TcpProxy } from "../../helpers/tcp-proxy.js";

// These tests compact etcd's history, so they use their own member instead of the run's shared one.
let member: EtcdMember;
beforeAll(async () => {
  member = await startEtcd();
});
afterAll(async () => {
  await member?.destroy();
});

const T = "2026-01-01T00:00:00.000Z";
const history = (outcome: string, moves: unknown) =>
  JSON.stringify({
    at: T,
    leader: "m1",
    epoch: 1,
    outcome,
    reasons: ["start"],
    workers: ["w1"],
    tasks: 3,
    added: 1,
    removed: 0,
    moved: 0,
    unassigned: 0,
    moves,
    ...(outcome === "refused" ? { refusal: "removal guard" } : {}),
  });

/** Every kind of key the picture holds (and one it must ignore), each with values a reader must take, repair or skip. */
function keyCases(keys: KeyLayout, lease: string): { key: string; values: string[] }[] {
  const worker = (name: string) =>
    JSON.stringify({ name, host: "h", pid: 1, version: "v", startedAt: T, capacity: 5 });
  const status = (state: string) => JSON.stringify({ state, attempt: 1, since: T, error: "e" });
  const plan = JSON.stringify({ epoch: 1, leader: "m1", at: T, workers: ["w1"], tasks: 3, moved: 0 });
  return [
    { key: keys.worker("w1"), values: [worker("w1"), '{"host":5}'] },
    { key: keys.worker("w2"), values: [worker("w2"), "not json"] },
    { key: keys.task("w1", "a"), values: ['{"id":"a","group":"g1"}', '{"id":"a"}', "x"] },
    { key: keys.task("w1", "b"), values: ['{"id":"b","group":"g2"}'] },
    { key: keys.task("w2", "a"), values: ['{"id":"a"}'] },
    { key: keys.status("w1", "a"), values: [status("running"), status("failed"), '{"state":5}'] },
    { key: keys.status("w2", "a"), values: [status("starting")] },
    { key: keys.status("w2", "z"), values: [status("stopping")] },
    { key: keys.plan, values: [plan, "{}"] },
    { key: keys.barrierLeft, values: [T, ""] },
    { key: keys.electionCandidate(lease), values: ["m1"] },
    { key: keys.cordon("w1"), values: [`{"mode":"cordon","at":"${T}","by":"me"}`, '{"mode":"drain"}'] },
    { key: keys.draining("w2"), values: [`{"at":"${T}"}`] },
    { key: keys.paused, values: [`{"at":"${T}","reason":"r"}`, "[]"] },
    { key: keys.pin("a"), values: [`{"worker":"w1","at":"${T}"}`, '{"worker":5}'] },
    {
      key: keys.held("w3"),
      values: ['{"since":"2026-01-01T00:00:00Z","until":"2099-01-01T00:00:00Z"}', "{}"],
    },
    { key: keys.left("w2"), values: [`{"at":"${T}"}`] },
    { key: keys.history(5), values: [history("applied", [{ id: "a", to: "w1" }]), "{}"] },
    { key: keys.history(7), values: [history("refused", []), history("refused", "x")] },
    {
      key: keys.audit(1_000, "a1"),
      values: [`{"at":"${T}","action":"cordon","by":"me","worker":"w1"}`, "{"],
    },
    { key: keys.audit(2_000, "b2"), values: [`{"at":"${T}","action":"pause","by":"you"}`] },
    { key: keys.runLock("a"), values: ["w1"] },
  ];
}

type Step =
  | { kind: "put"; key: number; value: number; leased: boolean }
  | { kind: "delete"; key: number }
  | { kind: "txn"; puts: number[]; deletes: number[] }
  | { kind: "revoke" }
  | { kind: "compact"; partitioned: boolean };

const KEYS = keyCases(new KeyLayout("probe"), "1").length;

const stepArbitrary: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("put" as const),
      key: fc.nat(KEYS - 1),
      value: fc.nat(2),
      leased: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("delete" as const), key: fc.nat(KEYS - 1) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("txn" as const),
      puts: fc.uniqueArray(fc.nat(KEYS - 1), { maxLength: 4 }),
      deletes: fc.uniqueArray(fc.nat(KEYS - 1), { maxLength: 2 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: "revoke" as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("compact" as const), partitioned: fc.boolean() }) },
);

/** A watch whose etcd connection runs through a proxy the test can partition. */
async function proxiedWatch(keys: KeyLayout) {
  const proxy = new TcpProxy({ host: "127.0.0.1", port: Number(member.hostPort.split(":")[1]) });
  await proxy.start();
  const client = createEtcdClient({ etcd: [proxy.hostPort], dialTimeout: 2_000 });
  const watch = new ClusterWatch(client, keys, silentLogger);
  let resyncs = 0;
  watch.on("resync", () => resyncs++);
  return {
    proxy,
    watch,
    resyncs: () => resyncs,
    async close() {
      await watch.close();
      client.close();
      await proxy.stop();
    },
  };
}

async function revisionNow(client: Etcd3): Promise<number> {
  return Number((await client.get("/revision-probe").exec()).header.revision);
}

/** The report without what depends on the clock of the reader (the plan's age). */
function timeless(report: StatusReport): StatusReport {
  return { ...report, plan: report.plan && { ...report.plan, ageMs: 0 } };
}

/** The view with each worker's task ids in one order (the report does not depend on it). */
function sortedView(view: ClusterView): ClusterView {
  return { ...view, assignments: new Map([...view.assignments].map(([w, ids]) => [w, [...ids].sort()])) };
}

describe("the console's in-memory picture", () => {
  it("equals readStatus, readHistory and readAudit at its revision after any puts, deletes, lease revocations and compactions", async () => {
    const direct = testClient([member.hostPort]);
    let resyncs = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(stepArbitrary, { minLength: 1, maxLength: 12 }), async (steps) => {
        const root = uniqueRoot("console-state");
        const keys = new KeyLayout(root);
        let lease = (await direct.leaseClient.leaseGrant({ TTL: 60 })).ID;
        const cases = () => keyCases(keys, lease);
        const put = (index: number, value: number, leased: boolean) => {
          const { key, values } = cases()[index]!;
          const request = direct.put(key).value(values[value % values.length]!);
          return leased ? request.lease(lease) : request;
        };
        // The root's first write: from here the newest revision is always one of this root's events.
        await put(0, 0, true);
        const subject = await proxiedWatch(keys);
        try {
          await subject.watch.start();
          for (const step of steps) {
            if (step.kind === "put") {
              await put(step.key, step.value, step.leased);
            } else if (step.kind === "delete") {
              await direct.delete().key(cases()[step.key]!.key);
            } else if (step.kind === "txn") {
              const ops = [
                ...step.puts.map((i) => ({
                  request_put: {
                    key: Buffer.from(cases()[i]!.key),
                    value: Buffer.from(cases()[i]!.values[0]!),
                    lease,
                  },
                })),
                ...step.deletes
                  .filter((i) => !step.puts.includes(i))
                  .map((i) => ({ request_delete_range: { key: Buffer.from(cases()[i]!.key) } })),
              ];
              await direct.kv.txn({ compare: [], success: ops, failure: [] });
            } else if (step.kind === "revoke") {
              await direct.leaseClient.leaseRevoke({ ID: lease });
              lease = (await direct.leaseClient.leaseGrant({ TTL: 60 })).ID;
            } else {
              // Compacted past the picture while it was cut off: it must rebuild from a fresh read.
              if (step.partitioned) subject.proxy.partition();
              await put(5, 2, true);
              await direct.delete().key(cases()[2]!.key);
              await direct.kv.compact({ revision: await revisionNow(direct), physical: true });
              if (step.partitioned) subject.proxy.heal();
            }
            const head = await revisionNow(direct);
            await waitFor(
              "the picture at etcd's revision",
              () => subject.watch.state.revision >= head,
              15_000,
            );
            const { state } = subject.watch;
            const read = await readStatus(direct, root, silentLogger, state.revision);
            expect(sortedView(state.view())).toEqual(sortedView(read.view));
            expect(timeless(statusReportOf(root, state))).toEqual(timeless(read.report));
            expect(state.records.schedules(200)).toEqual(await readHistory(direct, root, { limit: 200 }));
            expect(state.records.actions(10)).toEqual(await readAudit(direct, keys, { limit: 10 }));
          }
        } finally {
          resyncs += subject.resyncs();
          await subject.close();
          await direct.leaseClient.leaseRevoke({ ID: lease }).catch(() => undefined);
        }
      }),
      {
        numRuns: 15,
        // Always once: a compaction past a picture cut off from etcd (the resync path).
        examples: [
          [
            [
              { kind: "put", key: 5, value: 0, leased: true },
              { kind: "txn", puts: [2, 3, 17], deletes: [4] },
              { kind: "compact", partitioned: true },
              { kind: "revoke" },
            ],
          ],
        ],
      },
    );
    expect(resyncs).toBeGreaterThan(0);
  });
});
