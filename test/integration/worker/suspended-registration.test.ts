import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { createEtcdClient } from "../../../src/node/index.js";
import { etcdEndpoints, testSpace, waitFor } from "../../helpers/context.js";
import { TcpProxy } from "../../helpers/tcp-proxy.js";
import { putTask, RecordingHandler, testWorker } from "./fixtures.js";

/** A logger that keeps each line's message, with when it was logged. */
function recordingLogger() {
  const lines: Array<{ msg: string; at: number }> = [];
  const logger = pino(
    { level: "info" },
    { write: (line: string) => lines.push({ ...JSON.parse(line), at: Date.now() }) },
  );
  const at = (msg: string) => lines.find((line) => line.msg === msg)?.at;
  return { logger, at };
}

describe("a lease suspended before its session exists", () => {
  it("a worker waiting for a slot whose keep-alives stall registers nothing and starts nothing until the lease resumes", async () => {
    const { client, keys, root } = testSpace("suspended-early");
    const [host, port] = etcdEndpoints()[0].split(":");
    const proxy = new TcpProxy({ host, port: Number(port) });
    await proxy.start();
    const proxied = createEtcdClient({ etcd: [proxy.hostPort] });
    try {
      const first = testWorker({ root, name: "w1", maxWorkers: 1, handler: new RecordingHandler() });
      await first.start();
      await putTask(client, keys, "w2", { id: "t2" });
      // The data connection opens first; the lease's own connection (keep-alives) is the next one.
      await proxied.get(keys.plan).string();
      const dataConnections = proxy.connections;
      const handler = new RecordingHandler();
      const started = new Map<string, number>();
      handler.onStart = (task) => started.set(task.id, Date.now());
      const { logger, at } = recordingLogger();
      // Suspended 2 s after the last confirmed keep-alive, lost only after 10 s.
      const second = testWorker({
        root,
        name: "w2",
        client: proxied,
        handler,
        logger,
        maxWorkers: 1,
        ttlMs: 10_000,
        leaseMarginMs: 8_000,
      });
      const waiting = new Promise((resolve) => second.once("registrationWaiting", resolve));
      const registered = second.start();
      await waiting;
      proxy.hold((connection) => connection >= dataConnections);
      await waitFor(
        "w2's lease suspended",
        () => at("lease suspended: acting as lost, still confirming") !== undefined,
      );
      await first.stop();

      // The slot is free now: the next attempt must see the suspension and wait (not register, not start t2).
      await waitFor(
        "w2 to wait for its lease (or to register regardless)",
        () =>
          at("lease suspended: waiting for it to resume before registering") !== undefined ||
          started.has("t2"),
        15_000,
      );
      expect(started.has("t2")).toBe(false);
      expect(await client.get(keys.worker("w2")).string()).toBeNull();

      proxy.release();
      await registered;
      await waitFor("t2 running on w2", () => handler.running.has("t2"), 15_000);
      const resumedAt = at("keep-alive confirmed again: lease resumed") ?? Infinity;
      expect(started.get("t2")).toBeGreaterThanOrEqual(resumedAt);
      expect(second.status).not.toBe("lost");
    } finally {
      proxy.release();
      proxied.close();
      await proxy.stop();
    }
  }, 60_000);
});
