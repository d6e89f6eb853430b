import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureBuilt, REPO } from "../../helpers/cli.js";

/** A program a library user would write against the public API; it must compile under `strict`. */
const PROGRAM = `
import {
  createRegistry,
  EschedulerError,
  Master,
  observeWorker,
  plan,
  serveHttp,
  type Task,
  type TaskHandler,
  Worker,
} from "escheduler";

const handler: TaskHandler = {
  async start(task: Task) { void task.payload; },
  async stop() {},
};
const worker = new Worker({ etcd: ["127.0.0.1:2379"], root: "orders", handler });
const registry = createRegistry();
observeWorker(worker, registry);
export const endpoint = serveHttp(":0", {
  readiness: () => worker.readiness(),
  status: () => ({ status: worker.status, tasks: worker.tasks() }),
  metrics: registry,
});
export const master = new Master({ root: "orders", generator: async (): Promise<Task[]> => [{ id: "a" }] });
export const target = plan({ workers: ["w1"], tasks: [{ id: "a" }], current: {} }).assignment;
export const isOurs = (error: unknown) => error instanceof EschedulerError && error.code === "ERR_CONFIG";
`;

function run(command: string, args: string[], cwd: string) {
  const result = spawnSync(command, args, { cwd, encoding: "utf8", timeout: 120_000 });
  return { code: result.status, stdout: result.stdout ?? "", stderr: result.stderr ?? "" };
}

describe("the npm package, installed from its tarball into an empty project", () => {
  const project = mkdtempSync(join(tmpdir(), "escheduler-package-"));

  beforeAll(async () => {
    await ensureBuilt();
    // --ignore-scripts packs the dist/ the tests already built (prepack would rebuild it under them).
    const pack = run("npm", ["pack", "--ignore-scripts", "--silent", "--pack-destination", project], REPO);
    expect(pack.code, pack.stderr).toBe(0);
    const tarball = readdirSync(project).find((file) => file.endsWith(".tgz"));
    writeFileSync(
      join(project, "package.json"),
      JSON.stringify({ name: "app", private: true, type: "module" }),
    );
    // Everything comes from the npm cache the project's own `npm ci` filled.
    const install = run(
      "npm",
      [
        "install",
        "--prefer-offline",
        "--no-audit",
        "--no-fund",
        `./${tarball}`,
        "typescript@7",
        "@types/node@20",
      ],
      project,
    );
    expect(install.code, install.stderr).toBe(0);
  }, 180_000);
  afterAll(() => rmSync(project, { recursive: true, force: true }));

  it("ships the build, the binary, the examples, the web console's files, the monitoring files and the licence, but no sources, maps or set-up script", () => {
    const listing = run("npm", ["pack", "--ignore-scripts", "--dry-run", "--json"], REPO);
    const files: string[] = JSON.parse(listing.stdout)[0].files.map((file: { path: string }) => file.path);
    expect(files).toEqual(
      expect.arrayContaining([
        "LICENSE",
        "bin/escheduler.js",
        "dist/index.js",
        "dist/index.d.ts",
        "console/index.html",
        "console/console.js",
        "monitoring/alerts.yml",
        "monitoring/alerts.test.yml",
        "monitoring/dashboard.json",
        "examples/kubernetes/monitoring/prometheus-rule.yaml",
        "examples/kubernetes/monitoring/service-monitor.yaml",
      ]),
    );
    expect(files.filter((file) => /^(src|scripts|test)\/|\.map$/.test(file))).toEqual([]);
  });

  it("gives a working `npx escheduler --help`", () => {
    const help = run("npx", ["--no-install", "escheduler", "--help"], project);
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/^Usage: escheduler /);
  });

  it("lets a TypeScript program import the public API and compile under strict", () => {
    writeFileSync(join(project, "main.ts"), PROGRAM);
    const compile = run(
      "npx",
      [
        "--no-install",
        "tsc",
        "--strict",
        "--noEmit",
        "--module",
        "nodenext",
        "--target",
        "es2022",
        "--types",
        "node",
        "main.ts",
      ],
      project,
    );
    expect(compile.code, compile.stdout + compile.stderr).toBe(0);
  });
});
