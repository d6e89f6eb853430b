import { describe, expect, it } from "vitest";
import { type Plan, plan, PlanInputError, type Task, type WorkerSpec } from "../../../src/balancer/index.js";
import { parseLabel } from "../../../src/balancer/labels.js";

const ZONES = ["eu-1a", "eu-1b", "eu-1c"];
/** Six workers, two per zone: w0 eu-1a, w1 eu-1b, w2 eu-1c, w3 eu-1a, … */
const fleet: WorkerSpec[] = Array.from({ length: 6 }, (_, i) => ({
  name: `w${i}`,
  labels: { zone: ZONES[i % 3] },
}));
const zoneOf = (worker: string) => ZONES[Number(worker.slice(1)) % 3];
const perZone = (result: Plan, ids: (id: string) => boolean) => {
  const counts: Record<string, number> = {};
  for (const [worker, list] of Object.entries(result.assignment))
    for (const id of list) if (ids(id)) counts[zoneOf(worker)] = (counts[zoneOf(worker)] ?? 0) + 1;
  return counts;
};
const tasks: Task[] = [
  ...Array.from({ length: 12 }, (_, i) => ({ id: `feed-${i}`, group: "feeds", spread: { label: "zone" } })),
  ...Array.from({ length: 4 }, (_, i) => ({ id: `gdpr-${i}`, selector: { zone: "eu-1a" } })),
  ...Array.from({ length: 3 }, (_, i) => ({
    id: `db-${i}`,
    group: "db",
    antiKey: "db",
    spread: { label: "zone" },
  })),
];

describe("plan with placement constraints: a three-zone fleet", () => {
  const first = plan({ workers: fleet, tasks });

  it("spreads a group over the zones, keeps selector-bound tasks in their zone, replicas one per zone", () => {
    expect(perZone(first, (id) => id.startsWith("feed-"))).toEqual({ "eu-1a": 4, "eu-1b": 4, "eu-1c": 4 });
    expect(perZone(first, (id) => id.startsWith("gdpr-"))).toEqual({ "eu-1a": 4 });
    expect(perZone(first, (id) => id.startsWith("db-"))).toEqual({ "eu-1a": 1, "eu-1b": 1, "eu-1c": 1 });
    expect(first.unassigned).toEqual([]);
  });

  it("loses a zone: only its tasks move, spread over the two left; the third replica waits with its reason", () => {
    const left = fleet.filter((w) => w.labels?.zone !== "eu-1c");
    const after = plan({ workers: left, tasks, current: first.assignment });
    expect(perZone(after, (id) => id.startsWith("feed-"))).toEqual({ "eu-1a": 6, "eu-1b": 6 });
    expect(after.moved).toBe(4); // the zone's four feeds; its replica cannot go anywhere
    expect(after.unassigned).toHaveLength(1);
    expect(Object.values(after.reasons)).toEqual([
      { kind: "antiKey", text: "antiKey db: 3 tasks, 2 values of zone" },
    ]);
    const back = plan({ workers: fleet, tasks, current: after.assignment });
    expect(perZone(back, (id) => id.startsWith("feed-"))).toEqual({ "eu-1a": 4, "eu-1b": 4, "eu-1c": 4 });
    expect(back.moved).toBe(4);
    expect(back.unassigned).toEqual([]);
  });

  it("whichever zone is lost, the replicas still running stay and the lost zone's replica is the one that waits", () => {
    for (const lost of ZONES) {
      const left = fleet.filter((w) => w.labels?.zone !== lost);
      const after = plan({ workers: left, tasks, current: first.assignment });
      const lostReplica = Object.entries(first.assignment)
        .filter(([worker]) => zoneOf(worker) === lost)
        .flatMap(([, ids]) => ids.filter((id) => id.startsWith("db-")));
      expect(after.unassigned.filter((id) => id.startsWith("db-"))).toEqual(lostReplica);
      for (const [worker, ids] of Object.entries(first.assignment))
        for (const id of ids.filter((i) => i.startsWith("db-") && zoneOf(worker) !== lost))
          expect(after.assignment[worker]).toContain(id);
    }
  });

  it("names what no worker matches, and a hard spread leaves its excess out", () => {
    const result = plan({
      workers: fleet.slice(0, 4).map((w, i) => ({ ...w, capacity: i === 2 ? 1 : undefined })),
      tasks: [
        { id: "x", selector: { zone: "eu-1x" } },
        { id: "gpu", selector: { gpu: { exists: true } } },
        ...Array.from({ length: 6 }, (_, i) => ({
          id: `h${i}`,
          group: "h",
          spread: { label: "zone", hard: true },
        })),
      ],
    });
    expect(result.reasons.x).toEqual({ kind: "selector", text: "no worker matches zone=eu-1x" });
    expect(result.reasons.gpu).toEqual({ kind: "selector", text: "no worker matches gpu" });
    // eu-1c has room for one: the others get at most two each.
    expect(perZone(result, (id) => id.startsWith("h"))).toEqual({ "eu-1a": 2, "eu-1b": 2, "eu-1c": 1 });
    expect(result.unassigned.filter((id) => id.startsWith("h"))).toHaveLength(1);
  });

  it("a key goes where all its selectors match, or waits with the conflict", () => {
    const result = plan({
      workers: fleet,
      tasks: [
        { id: "a", key: "k", selector: { zone: ["eu-1a", "eu-1b"] } },
        { id: "b", key: "k", selector: { zone: { notIn: ["eu-1a"] } } },
        { id: "c", key: "bad", selector: { zone: "eu-1a" } },
        { id: "d", key: "bad", selector: { zone: "eu-1b" } },
      ],
    });
    const owner = Object.entries(result.assignment).find(([, ids]) => ids.includes("a"))![0];
    expect(zoneOf(owner)).toBe("eu-1b");
    expect(result.assignment[owner]).toContain("b");
    expect(result.reasons.c.kind).toBe("key");
    expect(result.reasons.c.text).toContain("key bad: no worker matches all of its selectors");
  });
});

describe("plan with placement constraints: bad shapes are refused, naming the task", () => {
  const refuse = (task: Record<string, unknown>, message: RegExp) =>
    expect(() => plan({ workers: fleet, tasks: [{ id: "t", ...task } as Task] })).toThrow(message);

  it("refuses selectors, spreads and antiKeys of the wrong shape", () => {
    refuse({ selector: "zone=a" }, /task "t": selector must be an object/);
    refuse({ selector: { zone: 3 } }, /selector zone: expected a value, a list/);
    refuse({ selector: { zone: [] } }, /one-of list must be a non-empty list/);
    refuse({ selector: { zone: { notIn: "a" } } }, /notIn must be a non-empty list/);
    refuse({ selector: { zone: { exists: "yes" } } }, /exists must be true or false/);
    refuse({ selector: { "bad key!": "a" } }, /label key "bad key!"/);
    refuse({ selector: { zone: "-a" } }, /value must be empty or 1–63 characters/);
    refuse({ spread: { label: "zone", maxSkew: 0 } }, /maxSkew must be an integer ≥ 1/);
    refuse({ spread: { label: "zone", hard: "yes" } }, /hard must be true or false/);
    refuse({ spread: { label: "zone", extra: 1 } }, /unknown field "extra"/);
    refuse({ spread: { label: "zone" }, key: "k" }, /spread does not apply to a task with a key/);
    refuse({ antiKey: "" }, /antiKey must be a non-empty string/);
  });

  it("refuses two spreads in one group, and bad worker labels", () => {
    expect(() =>
      plan({
        workers: fleet,
        tasks: [
          { id: "a", group: "g", spread: { label: "zone" } },
          { id: "b", group: "g", spread: { label: "zone", maxSkew: 2 } },
        ],
      }),
    ).toThrow(/task "b": the tasks of one group that carry a spread must carry the same spread/);
    expect(() => plan({ workers: [{ name: "w", labels: { zone: "a b" } }], tasks: [] })).toThrow(
      PlanInputError,
    );
  });

  it("parses k=v labels the Kubernetes way", () => {
    expect(parseLabel("zone=eu-1a")).toEqual({ key: "zone", value: "eu-1a" });
    expect(parseLabel("example.com/gpu=")).toEqual({ key: "example.com/gpu", value: "" });
    expect(parseLabel("zone")).toEqual({ problem: 'label "zone": expected key=value' });
    expect(parseLabel("Bad_Prefix/x=1")).toHaveProperty("problem");
    expect(parseLabel(`k=${"v".repeat(64)}`)).toHaveProperty("problem");
  });
});
