import { describe, expect, it } from "vitest";
import type { TaskStatus } from "../../../src/node/index.js";
import { CLAIMED, StatusPublisher, type StatusSink } from "../../../src/worker/status-publisher.js";

/** A sink whose writes complete only when the test says so. */
function manualSink() {
  const written: string[] = [];
  const pending: Array<() => void> = [];
  const write = (state: string) =>
    new Promise<void>((resolve) =>
      pending.push(() => {
        written.push(state);
        resolve();
      }),
    );
  const sink: StatusSink = {
    put: (_id, status) => write(status.state),
    remove: () => write("removed"),
    claim: (_id, status) => write(status.state).then(() => CLAIMED),
  };
  const completeNext = async () => {
    pending.shift()?.();
    await new Promise((resolve) => setImmediate(resolve));
  };
  return { sink, written, pending, completeNext };
}

const status = (state: TaskStatus["state"]): TaskStatus => ({ state, attempt: 1, since: "now" });

describe("StatusPublisher", () => {
  it("writes one status at a time, every one, in order", async () => {
    const { sink, written, pending, completeNext } = manualSink();
    const stored: Array<string | undefined> = [];
    const publisher = new StatusPublisher("t", sink, (s) => stored.push(s?.state));
    publisher.publish(status("starting"));
    publisher.publish(status("running"));
    publisher.publish(undefined);
    expect(pending).toHaveLength(1);
    for (let i = 0; i < 3; i++) await completeNext();
    await publisher.flushed();
    expect(written).toEqual(["starting", "running", "removed"]);
    expect(stored).toEqual(["starting", "running", undefined]);
    expect(publisher.storedStatus).toBeUndefined();
  });

  it("resolves flushed() only once the last published status is written", async () => {
    const { sink, completeNext } = manualSink();
    const publisher = new StatusPublisher("t", sink);
    publisher.publish(status("running"));
    let flushed = false;
    const done = publisher.flushed().then(() => {
      flushed = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(flushed).toBe(false);
    await completeNext();
    await done;
    expect(publisher.storedStatus?.state).toBe("running");
  });
});
