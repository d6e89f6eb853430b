import { appendFileSync, closeSync, fstatSync, openSync, readSync } from "node:fs";
import type { TaskEvent } from "../test/invariants/index.js";

/** The recording handlers' file, read incrementally (a long soak writes many lines). */
export class TaskEventLog {
  private readonly events: TaskEvent[] = [];
  private offset = 0;

  constructor(private readonly file: string) {}

  read(): TaskEvent[] {
    let fd: number;
    try {
      fd = openSync(this.file, "r");
    } catch {
      return this.events;
    }
    try {
      const fresh = Buffer.alloc(Math.max(0, fstatSync(fd).size - this.offset));
      readSync(fd, fresh, 0, fresh.length, this.offset);
      const end = fresh.lastIndexOf(0x0a) + 1;
      for (const line of fresh.subarray(0, end).toString("utf8").split("\n")) {
        if (line.trim() !== "") this.events.push(JSON.parse(line) as TaskEvent);
      }
      this.offset += end;
    } finally {
      closeSync(fd);
    }
    return this.events;
  }
}

/** The timeline as played, one line per action with its time, beside the processes' logs: what happened when. */
export class ActionLog {
  constructor(private readonly file: string) {}

  record(startedAt: number, action: string): void {
    appendFileSync(
      this.file,
      `${JSON.stringify({ t: startedAt, tookMs: Date.now() - startedAt, action })}\n`,
    );
  }
}
