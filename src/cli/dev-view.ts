/** What `escheduler dev` shows: the changes between two status reports as lines, and a full screen on a terminal. */
import { count, renderStatus, type StatusReport } from "./status-view.js";

const RECENT_LINES = 10;

/** One line per change between `before` (undefined at first) and `after`. */
export function describeChanges(before: StatusReport | undefined, after: StatusReport): string[] {
  const lines: string[] = [];
  const registered = (report?: StatusReport) =>
    new Set(report?.workers.filter((w) => w.registered).map((w) => w.name) ?? []);
  const was = registered(before);
  const is = registered(after);
  for (const name of is) if (!was.has(name)) lines.push(`${name} joined`);
  for (const name of was) if (!is.has(name)) lines.push(`${name} left`);
  if ((before?.leader ?? null) !== after.leader) {
    lines.push(after.leader ? `${after.leader} leads` : "no leader");
  }
  if (!before?.barrierLeft && after.barrierLeft)
    lines.push("barrier passed: the first gathering is complete");
  const plan = after.plan;
  const previous = before?.plan;
  const newPlan = plan && (plan.epoch !== previous?.epoch || plan.at !== previous?.at);
  // A periodic schedule that changed nothing is not news.
  const changed =
    !previous ||
    plan?.moved ||
    plan?.tasks !== previous.tasks ||
    plan?.workers.join() !== previous.workers.join();
  if (plan && newPlan && changed) {
    const loads = after.workers
      .filter((w) => plan.workers.includes(w.name))
      .map((w) => `${w.name} ${w.tasks}`)
      .join(", ");
    lines.push(
      `plan applied by ${plan.leader}: ${count(plan.tasks, "task")} on ${count(plan.workers.length, "worker")}, moved ${plan.moved} (${loads})`,
    );
  }
  if (before?.ready !== after.ready) {
    const tasks = after.workers.reduce((sum, w) => sum + w.tasks, 0);
    lines.push(
      after.ready
        ? `cluster ready: ${count(is.size, "worker")}, ${count(tasks, "task")} running`
        : `cluster not ready: ${after.reasons[0] ?? "unknown"}${after.reasons.length > 1 ? ` (+${after.reasons.length - 1} more)` : ""}`,
    );
  }
  return lines;
}

/** A time-stamped line ("12:00:01.234 message"). */
export function stamped(message: string, now = new Date()): string {
  return `${now.toTimeString().slice(0, 8)}.${String(now.getMilliseconds()).padStart(3, "0")} ${message}`;
}

export const KEY_HELP =
  "keys: + add a worker · - stop a worker (SIGTERM) · k kill a worker (SIGKILL) · s schedule now · q quit";

/**
 * The full terminal screen: header, the status table, the recent changes and the key help. Drawn
 * over the previous one (cursor home, clear each line's rest, clear below) so it does not flicker.
 */
export function renderScreen(header: string, report: StatusReport | undefined, recent: string[]): string {
  const body = report ? renderStatus(report) : "waiting for etcd…\n";
  const text = `${header}\n\n${body}\nRECENT\n${recent.join("\n")}\n\n${KEY_HELP}`;
  return `\x1b[H${text.split("\n").join("\x1b[K\n")}\x1b[K\n\x1b[J`;
}

/** The terminal: a redrawn screen with recent changes, keys in raw mode. */
export class Screen {
  private readonly recent: string[] = [];
  private lastHeader = "";
  private lastReport?: StatusReport;
  private keyListener?: (data: Buffer) => void;
  private lastScreen = "";

  note(message: string): void {
    this.recent.push(stamped(message));
    this.recent.splice(0, Math.max(0, this.recent.length - RECENT_LINES));
    if (this.lastHeader) this.draw(this.lastHeader, this.lastReport);
  }

  draw(header: string, report: StatusReport | undefined): void {
    this.lastHeader = header;
    this.lastReport = report;
    const screen = renderScreen(header, report, this.recent);
    if (screen === this.lastScreen) return;
    if (!this.lastScreen) process.stdout.write("\x1b[2J");
    this.lastScreen = screen;
    process.stdout.write(screen);
  }

  onKey(listener: (key: string) => void): void {
    if (!process.stdin.isTTY) return;
    process.stdin.setRawMode(true);
    this.keyListener = (data) => listener(data.toString());
    process.stdin.on("data", this.keyListener).resume();
  }

  close(): void {
    if (!this.keyListener) return;
    process.stdin.off("data", this.keyListener);
    process.stdin.setRawMode(false);
    process.stdin.pause();
  }
}
