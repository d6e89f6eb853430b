/** The shipped monitoring files (monitoring/, the Kubernetes example) and Debian's promtool that checks them. */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO } from "./cli.js";

export const MONITORING = join(REPO, "monitoring");
export const ALERTS = join(MONITORING, "alerts.yml");
export const ALERT_TESTS = join(MONITORING, "alerts.test.yml");
export const DASHBOARD = join(MONITORING, "dashboard.json");
export const PROMETHEUS_RULE = join(REPO, "examples", "kubernetes", "monitoring", "prometheus-rule.yaml");
/** Debian's `prometheus` package (scripts/setup.mjs installs it for `npm test`); PROMTOOL overrides. */
export const PROMTOOL = process.env.PROMTOOL ?? "promtool";

export interface PromtoolResult {
  code: number | null;
  output: string;
}

/** Runs `promtool <args>` (with `input` on stdin) to completion. */
export function promtool(args: string[], input?: string): PromtoolResult {
  const result = spawnSync(PROMTOOL, args, { cwd: REPO, input, encoding: "utf8", timeout: 60_000 });
  if (result.error)
    throw new Error(
      `cannot run ${PROMTOOL} (npm run setup -- --browser installs it): ${result.error.message}`,
    );
  return { code: result.status, output: `${result.stdout}${result.stderr}` };
}

/** Alert names of monitoring/alerts.yml, in order. */
export function alertNames(): string[] {
  return [...readFileSync(ALERTS, "utf8").matchAll(/^\s*- alert: (\w+)$/gm)].map((match) => match[1]);
}

/** Every PromQL expression of the rules (folded `>-` blocks joined) and of the dashboard's panels. */
export function shippedQueries(): { source: string; expr: string }[] {
  const rules = [
    ...readFileSync(ALERTS, "utf8").matchAll(/^(\s*)expr: (?:>-\n((?:\1  .*\n)+)|(.*)\n)/gm),
  ].map((match) => ({ source: "alerts.yml", expr: (match[3] ?? match[2]).replace(/\s+/g, " ").trim() }));
  const dashboard = JSON.parse(readFileSync(DASHBOARD, "utf8")) as {
    panels: { title: string; targets?: { expr: string }[] }[];
  };
  const panels = dashboard.panels.flatMap((panel) =>
    (panel.targets ?? []).map((target) => ({ source: `dashboard "${panel.title}"`, expr: target.expr })),
  );
  return [...rules, ...panels];
}

/** Metric names a query reads: every identifier of ours or of Node's default metrics. */
export function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\b(?:escheduler|process|nodejs)_[a-z0-9_]+\b/g)].map((match) => match[0]);
}

/** Checks `exprs` with `promtool check rules`, as recording rules (Grafana's variables replaced). */
export function checkQueries(exprs: string[]): PromtoolResult {
  const dir = mkdtempSync(join(tmpdir(), "escheduler-queries-"));
  const file = join(dir, "queries.yml");
  const rules = exprs.map((expr, i) => {
    const promql = expr.replaceAll("$__rate_interval", "5m").replaceAll("$job", ".*");
    return `      - record: query_${i}\n        expr: ${JSON.stringify(promql)}\n`;
  });
  writeFileSync(file, `groups:\n  - name: queries\n    rules:\n${rules.join("")}`);
  return promtool(["check", "rules", file]);
}
