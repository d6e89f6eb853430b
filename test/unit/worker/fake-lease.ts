import { EventEmitter } from "node:events";
import type { LeaseSession } from "../../../src/node/index.js";
import type { TaskChange, WorkerStatus } from "../../../src/worker/types.js";
import type { SessionHost } from "../../../src/worker/worker-session.js";

/** A lease the test loses or closes by hand (no etcd). */
export function fakeLease(startSuspended = false) {
  let suspended = startSuspended;
  const controller = new AbortController();
  let resolveLost!: (reason: Error) => void;
  const revoked: string[] = [];
  const events = new EventEmitter();
  const lease = {
    id: "42",
    on: events.on.bind(events),
    once: events.once.bind(events),
    off: events.off.bind(events),
    signal: controller.signal,
    get active() {
      return !controller.signal.aborted;
    },
    get suspended() {
      return suspended && !controller.signal.aborted;
    },
    lost: new Promise<Error>((resolve) => (resolveLost = resolve)),
    close: async () => {
      controller.abort();
      revoked.push("close");
    },
    orphan: () => controller.abort(),
    lease: { revoke: async () => void revoked.push("revoke") },
  };
  const lose = (reason: Error) => {
    controller.abort(reason);
    resolveLost(reason);
  };
  const suspend = (reason: Error) => {
    suspended = true;
    events.emit("suspended", reason);
  };
  const resume = () => {
    suspended = false;
    events.emit("resumed");
  };
  return { lease: lease as unknown as LeaseSession, lose, suspend, resume, revoked };
}

/** A host that records what the session reports. */
export function recordingHost() {
  const events: string[] = [];
  const changes: TaskChange[] = [];
  const statuses: WorkerStatus[] = [];
  const host: SessionHost = {
    emit: (event, ...args) => {
      if (event === "removed") events.push(`removed ${String(args[0])} (${String(args[1])})`);
      else if (event !== "taskState" && event !== "added" && event !== "changed") events.push(event);
    },
    publish: (change) => changes.push(change),
    setStatus: (status) => statuses.push(status),
    status: () => statuses.at(-1) ?? "new",
    changed: () => {},
    nextChange: () => new Promise(() => {}),
    registered: () => {},
  };
  return { host, events, changes, statuses };
}
