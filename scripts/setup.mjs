#!/usr/bin/env node
// Set-up for `npm start`, `npm test` and `npm run bench`, using only Node built-ins so it runs
// before node_modules exists: install dependencies when missing or stale, build when dist/ is
// stale, and make sure an etcd binary is available (Debian's etcd-server when running as root); with
// --browser (`npm test`) also Debian's chromium (the web console's browser test) and prometheus
// (its promtool checks the monitoring rules).
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, lstatSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const quiet = process.env.ESCHEDULER_SETUP_QUIET === "1";

function say(message) {
  if (!quiet) console.error(`setup: ${message}`);
}

function fail(message) {
  console.error(`setup: ${message}`);
  process.exit(1);
}

function run(command, args, options = {}) {
  const result = spawnSync(command, args, {
    cwd: root,
    stdio: quiet ? "ignore" : ["ignore", "inherit", "inherit"],
    ...options,
  });
  if (result.status !== 0)
    fail(`\`${command} ${args.join(" ")}\` failed (exit ${result.status ?? result.signal})`);
}

function mtime(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

function newestUnder(dir) {
  let newest = 0;
  if (!existsSync(dir)) return 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestUnder(path) : mtime(path));
  }
  return newest;
}

function onPath(binary) {
  return spawnSync("sh", ["-c", 'command -v "$1"', "sh", binary], { stdio: "ignore" }).status === 0;
}

// 1. Dependencies: npm ci when node_modules is missing or older than the lock file.
const lockChanged =
  mtime(join(root, "package-lock.json")) > mtime(join(root, "node_modules", ".package-lock.json"));
// A node_modules that is a symlink is shared with another checkout: npm ci would empty its target.
const shared =
  existsSync(join(root, "node_modules")) && lstatSync(join(root, "node_modules")).isSymbolicLink();
if (!existsSync(join(root, "node_modules")) || (lockChanged && !shared)) {
  say("installing dependencies (npm ci)");
  run("npm", ["ci", "--no-audit", "--no-fund"]);
}

// 2. Build: when any source is newer than the build output.
if (newestUnder(join(root, "src")) > mtime(join(root, "dist", "index.js"))) {
  say("building (tsc)");
  run("npm", ["run", "--silent", "build"]);
}

// 3. System packages from Debian, with one `apt-get update` for all: etcd (the one real dependency)
// and, with --browser (`npm test`), the Chromium the web console's browser test drives and the
// promtool (package `prometheus`) that checks and unit-tests monitoring/'s rules and dashboard.
// ETCD_BINARY (as the tests, the bench and `escheduler dev` honour it) names another etcd, e.g. a newer one.
const etcd = process.env.ETCD_BINARY ?? "etcd";
if (process.env.ETCD_BINARY && !process.env.ETCD_ENDPOINTS && !onPath(etcd))
  fail(`ETCD_BINARY is ${etcd}, which is not an executable etcd: fix the path or unset ETCD_BINARY`);
const chromium = process.env.CHROMIUM_BINARY ?? "/usr/bin/chromium";
const promtool = process.env.PROMTOOL ?? "promtool";
const forTests = process.argv.includes("--browser");
const missing = [];
if (!process.env.ETCD_ENDPOINTS && !onPath(etcd)) missing.push(["etcd-server", "etcd"]);
if (forTests && !existsSync(chromium)) missing.push(["chromium", chromium]);
if (forTests && !onPath(promtool)) missing.push(["prometheus", promtool]);
if (missing.length > 0) {
  const packages = missing.map(([name]) => name);
  const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
  if (!isRoot || !onPath("apt-get")) {
    fail(
      `missing ${missing.map(([, what]) => what).join(" and ")}: install Debian's ${packages.join(" and ")} (sudo apt-get install ${packages.join(" ")}); for etcd you may instead put an etcd binary on PATH or set ETCD_ENDPOINTS, for Chromium set CHROMIUM_BINARY, for promtool PROMTOOL`,
    );
  }
  say(`installing ${packages.join(" and ")} (apt-get install)`);
  run("apt-get", ["update", "-qq"]);
  run("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...packages], {
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
  });
  if (!process.env.ETCD_ENDPOINTS && !onPath(etcd))
    fail("apt-get installed etcd-server but no `etcd` binary is on PATH");
  if (packages.includes("chromium") && !existsSync(chromium))
    fail(`apt-get installed chromium but there is no ${chromium}`);
  if (packages.includes("prometheus") && !onPath(promtool))
    fail(`apt-get installed prometheus but no \`${promtool}\` is on PATH`);
}
if (!quiet && !process.env.ETCD_ENDPOINTS) {
  const version = execFileSync(etcd, ["--version"], { encoding: "utf8" }).split("\n")[0];
  say(`ready (${version}${process.env.ETCD_BINARY ? `: ${etcd}` : ""})`);
}
