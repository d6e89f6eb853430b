/** The fleet benchmarks' worker-host processes (bench/fleet-host.ts), each running many library `Worker`s. */
import { type ChildProcess, spawn } from "node:child_process";
import { setPriority } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const REPO = join(dirname(fileURLToPath(import.meta.url)), "..");
const HOST = join(REPO, "bench", "fleet-host.ts");

export interface HostReport {
  registered: number;
  assigned: number;
  running: number;
  lost: number;
  suspended: number;
}

/** A worker-host process and its latest report. */
export class Host {
  readonly child: ChildProcess;
  latest: HostReport = { registered: 0, assigned: 0, running: 0, lost: 0, suspended: 0 };
  readonly ready: Promise<void>;
  killed = false;

  /** `nice`: the process's scheduling priority (0: the bench's own). */
  constructor(
    env: Record<string, string>,
    readonly size: number,
    nice = 0,
  ) {
    // FLEET_HOST_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") profiles the worker processes.
    const nodeArgs = (process.env.FLEET_HOST_NODE_ARGS ?? "").split(" ").filter(Boolean);
    this.child = spawn(process.execPath, [...nodeArgs, "--import", "tsx", HOST], {
      cwd: REPO,
      env: { ...process.env, ...env },
      stdio: ["pipe", "pipe", "inherit"],
    });
    if (nice && this.child.pid) setPriority(this.child.pid, nice);
    let markReady: () => void = () => {};
    this.ready = new Promise((resolve) => {
      markReady = resolve;
    });
    createInterface({ input: this.child.stdout! }).on("line", (line) => {
      const message = JSON.parse(line) as Partial<HostReport> & { ready?: boolean };
      if (message.ready) markReady();
      else this.latest = message as HostReport;
    });
  }

  go(): void {
    this.child.stdin?.write("go\n");
  }
}

/** SIGTERM, then waits (at most 60 s) for the processes to exit: a profiled process writes its profile then. */
export async function stopGracefully(children: ChildProcess[]): Promise<void> {
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          const timer = setTimeout(resolve, 60_000);
          child.once("exit", () => {
            clearTimeout(timer);
            resolve();
          });
          child.kill("SIGTERM");
        }),
    ),
  );
}
