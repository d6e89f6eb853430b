import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type PlanInput, plan } from "../../../src/balancer/index.js";
import { expectConstraintsHold } from "./constraint-checks.js";
import { constrainedScenarios } from "./constraint-support.js";
import { runs } from "./support.js";

describe("plan with placement constraints: properties over random labelled fleets", () => {
  it("hard selectors, antiKeys, keys and spreads hold and every unassigned task has a true reason", () => {
    fc.assert(
      fc.property(constrainedScenarios({ maxWorkers: 7, maxTasks: 30, keys: true }), (scenario) => {
        expectConstraintsHold(scenario, plan(scenario));
      }),
      runs(300),
    );
  });

  it("the same holds with capacities and weights (a hard spread stays within maxSkew)", () => {
    fc.assert(
      fc.property(
        constrainedScenarios({ maxWorkers: 7, maxTasks: 30, keys: true, capacities: true }),
        (scenario) => {
          expectConstraintsHold(scenario, plan(scenario));
        },
      ),
      runs(300),
    );
  });

  it("is deterministic: the same input in any worker order gives the same plan, and a plan is its own fixed point", () => {
    fc.assert(
      fc.property(constrainedScenarios({ maxWorkers: 6, maxTasks: 25, keys: true }), (scenario) => {
        const first = plan(scenario);
        const reversed = plan({ ...scenario, workers: [...scenario.workers].reverse() });
        expect(JSON.stringify(reversed)).toBe(JSON.stringify(first));
        const again = plan({ ...scenario, current: first.assignment } as PlanInput);
        expect(again.moved).toBe(0);
      }),
      runs(150),
    );
  });
});
