import type { Logger } from "../node/index.js";

interface Sum {
  tasks: number;
  longestWaitMs?: number;
  lastAt: number;
  timer?: NodeJS.Timeout;
}

/**
 * Info lines of a few kinds, at most one of each kind per interval: a line stands for every task of
 * its kind counted since the last one, with the longest wait among them. A line goes out on the next
 * turn of the event loop at the earliest (so what one callback counts shares a line), after a quiet
 * interval, else at the interval's end (or on `flush`). A join that moved 22,500 tasks wrote about
 * 800 hand-off lines in 12 s, a line per batch; summed, about 25.
 */
export class SummedLog<Kind extends string> {
  private readonly sums = new Map<Kind, Sum>();

  constructor(
    private readonly logger: Logger,
    private readonly messages: Readonly<Record<Kind, string>>,
    private readonly intervalMs = 1_000,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Counts `tasks` of a kind (and the longest wait among them, if they have one). */
  add(kind: Kind, tasks: number, longestWaitMs?: number): void {
    let sum = this.sums.get(kind);
    if (!sum) {
      sum = { tasks: 0, lastAt: Number.NEGATIVE_INFINITY };
      this.sums.set(kind, sum);
    }
    sum.tasks += tasks;
    if (longestWaitMs !== undefined) sum.longestWaitMs = Math.max(sum.longestWaitMs ?? 0, longestWaitMs);
    if (sum.timer) return;
    const due = Math.max(0, sum.lastAt + this.intervalMs - this.now());
    const counted = sum;
    sum.timer = setTimeout(() => this.write(kind, counted), due).unref();
  }

  /** Logs what was counted since the last line of each kind, if anything. */
  flush(): void {
    for (const [kind, sum] of this.sums) this.write(kind, sum);
  }

  private write(kind: Kind, sum: Sum): void {
    clearTimeout(sum.timer);
    sum.timer = undefined;
    if (sum.tasks === 0) return;
    const fields: Record<string, number> = { tasks: sum.tasks };
    if (sum.longestWaitMs !== undefined) fields.longestWaitMs = sum.longestWaitMs;
    this.logger.info(fields, this.messages[kind]);
    sum.tasks = 0;
    sum.longestWaitMs = undefined;
    sum.lastAt = this.now();
  }
}
