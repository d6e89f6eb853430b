/** What the hand-off gate writes: the puts a schedule decided on, and those waiting for an old owner. */

/** A task put the schedule decided on. */
export interface PlannedPut {
  taskId: string;
  worker: string;
  /** `/R/task/<worker>/<id>` */
  key: string;
  value: string;
  priority: number;
  /** A move begun with a record (`/R/move/<taskId>`, see begun-moves.ts): its write deletes the record. */
  recorded?: { from: string };
}

/** A put that must wait until other workers' status keys for the same task are gone. */
export interface HeldPut extends PlannedPut {
  /** Status keys of the task on other workers, present at the revision the statuses were read. */
  blockers: string[];
  /** Workers that still report the task. */
  from: string[];
}

export interface HandoffWaitEvent {
  task: string;
  from: string;
  to: string;
  ms: number;
}
