/**
 * ClusterState alone (no etcd): the picture built from a snapshot and the events after it equals the
 * picture built from one snapshot of the same keys at the end, whatever the order of puts, deletes and
 * multi-key revisions. The integration test compares it with `readStatus` itself.
 */
import type { IKeyValue } from "etcd3";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ClusterState } from "../../../src/cluster-view/index.js";
import type { RangeEvent } from "../../../src/master/view/index.js";
import { KeyLayout, silentLogger } from "../../../src/node/index.js";

const keys = new KeyLayout("unit");
const T = "2026-01-01T00:00:00.000Z";
const history = (outcome: string) =>
  JSON.stringify({
    at: T,
    leader: "m1",
    epoch: 1,
    outcome,
    reasons: [],
    workers: ["w1"],
    tasks: 1,
    added: 0,
    removed: 0,
    moved: 0,
    unassigned: 0,
    moves: [{ id: "a", to: "w1" }],
  });

/** Keys of every kind the state holds, and values it takes, repairs or skips. */
const CASES: { key: string; values: string[] }[] = [
  {
    key: keys.worker("w1"),
    values: [`{"name":"w1","host":"h","pid":1,"version":"v","startedAt":"${T}"}`, "{"],
  },
  { key: keys.worker("w2"), values: [`{"name":"w2","host":"h","pid":2,"version":"v","startedAt":"${T}"}`] },
  { key: keys.task("w1", "a"), values: ['{"id":"a","group":"g"}', '{"id":"a"}', "x"] },
  { key: keys.task("w1", "b"), values: ['{"id":"b"}'] },
  { key: keys.task("w2", "c"), values: ['{"id":"c","group":"h"}'] },
  { key: keys.status("w1", "a"), values: [`{"state":"running","attempt":1,"since":"${T}"}`, '{"state":5}'] },
  { key: keys.status("w2", "c"), values: [`{"state":"failed","attempt":2,"since":"${T}","error":"e"}`] },
  {
    key: keys.plan,
    values: [`{"epoch":1,"leader":"m","at":"${T}","workers":["w1"],"tasks":2,"moved":0}`, "{}"],
  },
  { key: keys.barrierLeft, values: [T] },
  { key: keys.electionCandidate("10"), values: ["m1"] },
  { key: keys.electionCandidate("20"), values: ["m2"] },
  { key: keys.cordon("w1"), values: [`{"mode":"drain","at":"${T}"}`, "[]"] },
  { key: keys.paused, values: [`{"at":"${T}"}`] },
  { key: keys.pin("a"), values: [`{"worker":"w2","at":"${T}"}`] },
  { key: keys.history(3), values: [history("applied"), "{}"] },
  { key: keys.history(9), values: [history("refused")] },
  { key: keys.audit(5, "a"), values: [`{"at":"${T}","action":"pause","by":"me"}`, "{"] },
  { key: keys.audit(6, "b"), values: [`{"at":"${T}","action":"resume","by":"me"}`] },
  { key: keys.runLock("a"), values: ["w1"] },
];

type Op = { key: number; value: number; leased: boolean } | { key: number; delete: true };
const opArbitrary: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ key: fc.nat(CASES.length - 1), value: fc.nat(2), leased: fc.boolean() }),
  fc.record({ key: fc.nat(CASES.length - 1), delete: fc.constant(true as const) }),
);

function kvOf(key: string, value: string, lease: string, revision: number, created: number): IKeyValue {
  return {
    key: Buffer.from(key),
    value: Buffer.from(value),
    lease,
    create_revision: String(created),
    mod_revision: String(revision),
    version: "1",
  };
}

/** Everything a snapshot shows, in one comparable value. */
function picture(state: ClusterState) {
  const view = state.view();
  return {
    ...view,
    assignments: [...view.assignments].map(([worker, ids]) => [worker, [...ids].sort()]).sort(),
    groups: [...view.assignments]
      .flatMap(([worker, ids]) => ids.map((id) => `${worker}/${id}=${state.groupOf(worker, id)}`))
      .sort(),
    assigned: state.assigned,
    controls: state.controls(),
    newest: state.records.newestSchedule(),
    schedules: state.records.schedules(200),
    actions: state.records.actions(10),
  };
}

describe("ClusterState", () => {
  it("built from a snapshot and the events after it equals one built from a snapshot at the end", () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(opArbitrary, { minLength: 1, maxLength: 4 }), { maxLength: 30 }),
        fc.nat(30),
        (revisions, cut) => {
          const store = new Map<string, IKeyValue>();
          const incremental = new ClusterState(keys, silentLogger);
          incremental.replace({ revision: 1, kvs: [] });
          revisions.forEach((ops, index) => {
            const revision = index + 2;
            const events = ops.flatMap((op): RangeEvent[] => {
              const { key, values } = CASES[op.key]!;
              if ("delete" in op) {
                const had = store.get(key);
                store.delete(key);
                return had
                  ? [{ type: "Delete" as const, kv: { ...had, mod_revision: String(revision) } }]
                  : [];
              }
              const created = Number(store.get(key)?.create_revision ?? revision);
              const kv = kvOf(
                key,
                values[op.value % values.length]!,
                op.leased ? "7" : "0",
                revision,
                created,
              );
              store.set(key, kv);
              return [{ type: "Put", kv }];
            });
            if (index === cut) incremental.replace({ revision, kvs: [...store.values()] });
            else incremental.apply(revision, events);
            // Asked between revisions too, as the console does: a stale cache would show at the end.
            picture(incremental);
          });
          const fresh = new ClusterState(keys, silentLogger);
          fresh.replace({ revision: revisions.length + 1, kvs: [...store.values()] });

          expect(incremental.revision).toBe(fresh.revision);
          expect(picture(incremental)).toEqual(picture(fresh));
        },
      ),
      { numRuns: 300 },
    );
  });
});
