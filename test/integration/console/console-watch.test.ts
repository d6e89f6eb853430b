/**
 * The console fed by its watch: changes reach every viewer without reads of their own, the watch
 * runs only while someone watches or asks, and a bad record arriving as an event is skipped with one
 * warning naming its key.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { ConsoleFeed } from "../../../src/console/feed.js";
import type { ConsoleSnapshot } from "../../../src/console/snapshot.js";
import { type KeyLayout, type Logger, silentLogger } from "../../../src/node/index.js";
import { testSpace, waitFor } from "../../helpers/context.js";

const since = "2026-01-01T00:00:00.000Z";
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function feedOver(space: ReturnType<typeof testSpace>, options: { idleMs?: number; logger?: Logger } = {}) {
  const feed = new ConsoleFeed({
    client: space.client,
    root: space.root,
    logger: options.logger ?? silentLogger,
    admin: false,
    idleMs: options.idleMs,
  });
  cleanups.push(() => feed.stop());
  return feed;
}

/** Serves the feed's event stream; `viewer()` opens one and collects the snapshots it is sent. */
async function serveEvents(feed: ConsoleFeed) {
  const server: Server = createServer((_request, response) => feed.subscribe(response));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const aborts: AbortController[] = [];
  cleanups.push(async () => {
    for (const abort of aborts) abort.abort();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  return {
    async viewer() {
      const abort = new AbortController();
      aborts.push(abort);
      const response = await fetch(url, { signal: abort.signal });
      const snapshots: ConsoleSnapshot[] = [];
      void (async () => {
        const decoder = new TextDecoder();
        let text = "";
        for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
          text += decoder.decode(chunk, { stream: true });
          for (let end = text.indexOf("\n\n"); end >= 0; end = text.indexOf("\n\n")) {
            const event = /^event: snapshot\ndata: (.*)$/s.exec(text.slice(0, end));
            if (event) snapshots.push(JSON.parse(event[1] as string) as ConsoleSnapshot);
            text = text.slice(end + 2);
          }
        }
      })().catch(() => undefined);
      return { snapshots, close: () => abort.abort() };
    },
  };
}

async function register(
  space: { client: ReturnType<typeof testSpace>["client"]; keys: KeyLayout },
  lease: string,
  name: string,
) {
  await space.client
    .put(space.keys.worker(name))
    .value(JSON.stringify({ name, host: "h", pid: 1, version: "0", startedAt: since }))
    .lease(lease);
}

describe("the console fed by its watch", () => {
  it("pushes each change to every viewer from one read of the cluster, whatever the number of viewers", async () => {
    const space = testSpace("console-push");
    const { ID: lease } = await space.client.leaseClient.leaseGrant({ TTL: 60 });
    await register(space, lease, "w1");
    const feed = feedOver(space);
    const events = await serveEvents(feed);
    const viewers = await Promise.all(Array.from({ length: 5 }, () => events.viewer()));
    const everyViewerShows = (what: string, shows: (s: ConsoleSnapshot) => boolean) =>
      waitFor(what, () => viewers.every((v) => v.snapshots.some(shows)));

    await everyViewerShows("w1", (s) => s.totals.workers === 1);
    await register(space, lease, "w2");
    await everyViewerShows("w2 registered", (s) => s.totals.workers === 2);
    await space.client.put(space.keys.task("w2", "t1")).value('{"id":"t1"}');
    await space.client
      .put(space.keys.status("w2", "t1"))
      .value(JSON.stringify({ state: "failed", attempt: 3, since, error: "boom" }))
      .lease(lease);
    await everyViewerShows("t1 failed on w2", (s) =>
      s.notRunning.some((t) => t.id === "t1" && t.error === "boom"),
    );

    expect(feed.reads).toBe(1);
  });

  it("watches only while someone watches or asks: the watch closes once idle, and opens again with the next viewer", async () => {
    const space = testSpace("console-idle");
    const feed = feedOver(space, { idleMs: 300 });
    const events = await serveEvents(feed);

    expect(feed.watching).toBe(false);
    await feed.snapshot();
    expect(feed.watching).toBe(true);
    await waitFor("the watch closed after the question", () => !feed.watching);

    const viewer = await events.viewer();
    await waitFor("the viewer's first snapshot", () => viewer.snapshots.length > 0);
    await new Promise((resolve) => setTimeout(resolve, 600)); // twice idleMs: a viewer keeps it open
    expect(feed.watching).toBe(true);
    viewer.close();
    await waitFor("the watch closed after the viewer left", () => !feed.watching);

    expect(feed.reads).toBe(2);
  });

  it("skips a bad record that arrives as an event with one warning naming its key, and shows later changes", async () => {
    const space = testSpace("console-hostile-event");
    const warnings: Array<Record<string, unknown>> = [];
    const logger = pino({ level: "warn" }, { write: (line: string) => void warnings.push(JSON.parse(line)) });
    const { ID: lease } = await space.client.leaseClient.leaseGrant({ TTL: 60 });
    await register(space, lease, "w1");
    await space.client.put(space.keys.task("w1", "t1")).value('{"id":"t1"}');
    const feed = feedOver(space, { logger });
    await feed.snapshot();

    const badStatus = space.keys.status("w1", "t1");
    const leaseless = space.keys.worker("fake");
    await space.client.put(badStatus).value('{"state":5}').lease(lease);
    await space.client.put(leaseless).value(JSON.stringify({ name: "fake" }));
    await space.client.put(space.keys.plan).value('{"workers":5}');
    await register(space, lease, "w2");
    const after = await waitFor("w2 registered", async () => {
      const snapshot = await feed.snapshot();
      return snapshot.totals.workers === 2 ? snapshot : undefined;
    });

    expect(after.workers.map((w) => w.name)).toEqual(["w1", "w2"]);
    expect(after.notRunning).toMatchObject([{ worker: "w1", id: "t1", state: "unstarted" }]);
    expect(after.plan).toBeNull();
    expect(warnings.map((w) => w.key).sort()).toEqual([leaseless, space.keys.plan, badStatus].sort());
  });
});
