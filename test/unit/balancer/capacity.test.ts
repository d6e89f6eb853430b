import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { plan } from "../../../src/balancer/index.js";
import { expectConsistent, loads, runs, scenarios, spread, workerName } from "./support.js";

const capacityOf = (worker: string | { name: string; capacity?: number }) =>
  typeof worker === "string" ? Number.POSITIVE_INFINITY : (worker.capacity ?? Number.POSITIVE_INFINITY);

describe("capacity", () => {
  it("no worker ever carries more than its capacity", () => {
    fc.assert(
      fc.property(
        scenarios({
          maxWorkers: 8,
          maxTasks: 100,
          groups: 3,
          keys: 8,
          maxWeight: 4,
          priorities: 3,
          maxCapacity: 30,
        }),
        (input) => {
          const result = plan(input);
          expectConsistent(input, result);
          const total = loads(input.tasks, result, () => true).get("*")!;
          for (const worker of input.workers) {
            expect(total.get(workerName(worker))).toBeLessThanOrEqual(capacityOf(worker));
          }
        },
      ),
      runs(200),
    );
  });

  it("a task of weight 1 is unassigned only when every worker is full, and never before a lower priority", () => {
    fc.assert(
      fc.property(
        scenarios({ maxWorkers: 6, maxTasks: 80, groups: 3, priorities: 4, maxCapacity: 15 }),
        (input) => {
          const result = plan(input);
          if (result.unassigned.length === 0) return;
          const priority = new Map(input.tasks.map((t) => [t.id, t.priority ?? 0]));
          for (const worker of input.workers) {
            expect(result.assignment[workerName(worker)]).toHaveLength(capacityOf(worker));
          }
          const lowestPlaced = Math.min(
            ...Object.values(result.assignment)
              .flat()
              .map((id) => priority.get(id)!),
          );
          expect(Math.max(...result.unassigned.map((id) => priority.get(id)!))).toBeLessThanOrEqual(
            lowestPlaced,
          );
        },
      ),
      runs(200),
    );
  });

  it("workers with room left are balanced within one per group and in total; full ones carry no more", () => {
    fc.assert(
      fc.property(scenarios({ maxWorkers: 8, maxTasks: 100, groups: 4, maxCapacity: 20 }), (input) => {
        const result = plan(input);
        const roomy = new Set(
          input.workers
            .filter((w) => result.assignment[workerName(w)].length < capacityOf(w))
            .map(workerName),
        );
        const perGroup = loads(input.tasks, result, () => true);
        for (const perWorker of perGroup.values()) {
          expect(
            spread([...perWorker].filter(([w]) => roomy.has(w)).map(([, load]) => load)),
          ).toBeLessThanOrEqual(1);
        }
        const totals = perGroup.get("*")!;
        const lowestRoomy = Math.min(...[...roomy].map((w) => totals.get(w)!));
        for (const [, load] of totals) expect(load).toBeLessThanOrEqual(lowestRoomy + 1);
      }),
      runs(200),
    );
  });
});
