import fc from "fast-check";
import pino from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import { SummedLog } from "../../../src/master/summed-log.js";

const INTERVAL = 1_000;
const MESSAGES = { held: "held line", written: "written line" };
type Kind = keyof typeof MESSAGES;

interface Line {
  kind: Kind;
  at: number;
  tasks: number;
  longestWaitMs?: number;
}

describe("SummedLog (property)", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("logs every task once, within an interval of its count, at most one line of a kind per interval, with the longest wait of the tasks it stands for", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            gap: fc.integer({ min: 0, max: 2 * INTERVAL }),
            kind: fc.constantFrom<Kind>("held", "written"),
            tasks: fc.integer({ min: 1, max: 50 }),
            waitMs: fc.option(fc.integer({ min: 0, max: 10_000 }), { nil: undefined }),
          }),
          { minLength: 1, maxLength: 60 },
        ),
        fc.boolean(),
        (adds, flushEarly) => {
          vi.useFakeTimers();
          const start = Date.now();
          const lines: Line[] = [];
          const logger = pino({ level: "info" }, { write: (text: string) => void record(text) });
          const kindOf = new Map(Object.entries(MESSAGES).map(([kind, message]) => [message, kind as Kind]));
          const record = (text: string) => {
            const { msg, tasks, longestWaitMs } = JSON.parse(text) as Line & { msg: string };
            lines.push({ kind: kindOf.get(msg) as Kind, at: Date.now() - start, tasks, longestWaitMs });
          };
          const log = new SummedLog(logger, MESSAGES, INTERVAL, () => Date.now());
          const counted: Array<{ kind: Kind; at: number; tasks: number; waitMs?: number }> = [];
          for (const { gap, kind, tasks, waitMs } of adds) {
            vi.advanceTimersByTime(gap);
            log.add(kind, tasks, waitMs);
            counted.push({ kind, at: Date.now() - start, tasks, waitMs });
          }
          // A flush (the gate closing) writes what is pending at once; the timers do otherwise.
          if (flushEarly) log.flush();
          vi.advanceTimersByTime(2 * INTERVAL);
          vi.useRealTimers();

          for (const kind of ["held", "written"] as const) {
            const ofKind = lines.filter((line) => line.kind === kind);
            const countedOfKind = counted.filter((add) => add.kind === kind);
            const total = (items: Array<{ tasks: number }>) =>
              items.reduce((sum, item) => sum + item.tasks, 0);
            expect(total(ofKind)).toBe(total(countedOfKind));
            // Each line stands for the adds since the line before it (in order): its sum and longest wait.
            let from = 0;
            ofKind.forEach((line, i) => {
              if (i > 0 && !(flushEarly && i === ofKind.length - 1))
                expect(line.at - ofKind[i - 1].at).toBeGreaterThanOrEqual(INTERVAL);
              const covered = countedOfKind.slice(from).filter((add) => add.at <= line.at);
              let sum = 0;
              let n = 0;
              while (sum < line.tasks) sum += covered[n++]?.tasks ?? Number.POSITIVE_INFINITY;
              expect(sum).toBe(line.tasks);
              const waits = covered
                .slice(0, n)
                .flatMap((add) => (add.waitMs === undefined ? [] : [add.waitMs]));
              expect(line.longestWaitMs).toBe(waits.length === 0 ? undefined : Math.max(...waits));
              for (const add of covered.slice(0, n)) expect(line.at - add.at).toBeLessThanOrEqual(INTERVAL);
              from += n;
            });
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});
