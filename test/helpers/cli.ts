/** Running the real `bin/escheduler.js` as child processes: spawn, capture output, wait for conditions, clean up. */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll } from "vitest";

export const REPO = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const BINARY = join(REPO, "bin", "escheduler.js");
export const EXAMPLE_GENERATOR = join(REPO, "examples", "generator.mjs");
export const EXAMPLE_HANDLER = join(REPO, "examples", "handler.mjs");

function newestUnder(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestUnder(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/**
 * Builds dist/ when any source is newer than it (the binary runs the build output). Test files may
 * call this concurrently; a lock directory makes one build while the others wait.
 */
export async function ensureBuilt(): Promise<void> {
  const output = join(REPO, "dist", "cli", "main.js");
  const fresh = () => existsSync(output) && statSync(output).mtimeMs >= newestUnder(join(REPO, "src"));
  if (fresh()) return;
  const lock = join(REPO, "node_modules", ".escheduler-build-lock");
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`build lock ${lock} held for 2 minutes`);
      // A lock older than any build is left over from a killed run.
      if (existsSync(lock) && Date.now() - statSync(lock).mtimeMs > 60_000) rmdirSync(lock);
      await new Promise((resolve) => setTimeout(resolve, 200));
      if (fresh()) return;
    }
  }
  try {
    if (fresh()) return;
    // tsc emits even when some file has type errors; the binary only needs the output.
    spawnSync(
      process.execPath,
      [join(REPO, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.build.json"],
      {
        cwd: REPO,
        stdio: "ignore",
      },
    );
    if (!existsSync(output)) throw new Error("the build did not produce dist/cli/main.js");
  } finally {
    rmdirSync(lock);
  }
}

export interface CliOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** The script to run instead of bin/escheduler.js (e.g. a link named escheduler-worker). */
  entry?: string;
}

export interface CliExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** When the process had exited and its output was closed (epoch ms, like the log lines' `time`). */
  exitedAt: number;
}

const live = new Set<CliProcess>();
afterAll(async () => {
  await Promise.all([...live].map((cli) => cli.stop("SIGKILL")));
});

/** One running `escheduler …` process; killed after the test file if still running. */
export class CliProcess {
  stdout = "";
  stderr = "";
  readonly exited: Promise<CliExit>;
  private readonly child: ChildProcess;

  constructor(args: string[], options: CliOptions = {}) {
    this.child = spawn(process.execPath, [options.entry ?? BINARY, ...args], {
      cwd: options.cwd ?? REPO,
      env: { ...process.env, ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child.stdout?.on("data", (chunk: Buffer) => {
      this.stdout += chunk.toString();
    });
    this.child.stderr?.on("data", (chunk: Buffer) => {
      this.stderr += chunk.toString();
    });
    live.add(this);
    this.exited = new Promise((resolve) => {
      this.child.once("close", (code, signal) => {
        live.delete(this);
        resolve({ code, signal, stdout: this.stdout, stderr: this.stderr, exitedAt: Date.now() });
      });
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }
  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves with the first match of `pattern` in stdout or stderr; rejects on timeout or exit. */
  async waitForOutput(pattern: RegExp, timeoutMs = 15_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = this.stdout.match(pattern) ?? this.stderr.match(pattern);
      if (match) return match;
      if (!this.running) throw new Error(`process exited before printing ${pattern}:\n${this.output()}`);
      if (Date.now() > deadline) throw new Error(`no ${pattern} within ${timeoutMs}ms:\n${this.output()}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /** Sends `signal` and waits for the exit. */
  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<CliExit> {
    if (this.running) this.child.kill(signal);
    return this.exited;
  }

  output(): string {
    return `--- stdout\n${this.stdout.slice(-4000)}\n--- stderr\n${this.stderr.slice(-4000)}`;
  }
}

/** Runs `escheduler …` to completion. */
export function runCli(args: string[], options: CliOptions = {}): Promise<CliExit> {
  return new CliProcess(args, options).exited;
}

/**
 * How long the process lived after its final "stopped" log line: once a node has stopped, nothing
 * (a socket, a stream, a timer) may keep it alive until bin/escheduler.js's fallback exit.
 */
export function msFromStoppedToExit(exit: CliExit): number {
  const stopped = exit.stdout
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as { msg?: string; time?: number })
    .find((line) => line.msg === "stopped");
  if (stopped?.time === undefined) throw new Error(`no "stopped" log line:\n${exit.stdout.slice(-4000)}`);
  return exit.exitedAt - stopped.time;
}

/** True while a process with this pid exists. */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
