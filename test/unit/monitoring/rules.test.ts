import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  ALERT_TESTS,
  ALERTS,
  alertNames,
  checkQueries,
  DASHBOARD,
  PROMETHEUS_RULE,
  promtool,
  shippedQueries,
} from "../../helpers/monitoring.js";

describe("the shipped alert rules and dashboard (monitoring/)", () => {
  it("pass promtool check rules", () => {
    const result = promtool(["check", "rules", ALERTS]);
    expect(result.output).toMatch(/SUCCESS: 11 rules found/);
    expect(result.code).toBe(0);
  });

  it("pass their promtool unit tests", () => {
    const result = promtool(["test", "rules", ALERT_TESTS]);
    expect(result.output).toMatch(/SUCCESS/);
    expect(result.code).toBe(0);
  });

  it("test every alert both firing and silent", () => {
    const tests = readFileSync(ALERT_TESTS, "utf8");
    const silent = new Set([...tests.matchAll(/alertname: (\w+), exp_alerts: \[\]/g)].map((m) => m[1]));
    const firing = new Set(
      [...tests.matchAll(/alertname: (\w+)\n\s+exp_alerts:\n\s+- exp_labels/g)].map((m) => m[1]),
    );
    const names = alertNames();
    expect(names).toEqual([
      "EschedulerNoLeader",
      "EschedulerTwoLeaders",
      "EschedulerSchedulesFailing",
      "EschedulerRemovalGuardRefusing",
      "EschedulerPausedTooLong",
      "EschedulerTasksNotRunning",
      "EschedulerTasksUnassigned",
      "EschedulerTasksQuarantined",
      "EschedulerTasksHeldTooLong",
      "EschedulerLeaseLosses",
      "EschedulerHandoffWaitHigh",
    ]);
    expect(names.filter((name) => !silent.has(name))).toEqual([]);
    expect(names.filter((name) => !firing.has(name))).toEqual([]);
  });

  it("say that no leader is also no master scraped at all (absent)", () => {
    expect(readFileSync(ALERTS, "utf8")).toMatch(/absent\(escheduler_master_leader\)/);
  });

  it("ship the same rules as a PrometheusRule", () => {
    const plain = readFileSync(ALERTS, "utf8");
    const groups = plain.slice(plain.indexOf("\ngroups:") + 1);
    const resource = readFileSync(PROMETHEUS_RULE, "utf8");
    expect(resource).toMatch(/^apiVersion: monitoring\.coreos\.com\/v1\nkind: PrometheusRule\n/m);
    const spec = resource
      .slice(resource.indexOf("\nspec:\n") + 7)
      .split("\n")
      .map((line) => line.replace(/^ {2}/, ""))
      .join("\n");
    expect(spec).toBe(groups);
  });

  it("have a dashboard whose every query is valid PromQL", () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD, "utf8")) as { uid: string; panels: unknown[] };
    expect(dashboard.uid).toBe("escheduler");
    const queries = shippedQueries().filter((query) => query.source.startsWith("dashboard"));
    expect(queries.length).toBeGreaterThan(20);
    const result = checkQueries(queries.map((query) => query.expr));
    expect(result.output).toMatch(new RegExp(`SUCCESS: ${queries.length} rules found`));
    expect(result.code).toBe(0);
  });
});
