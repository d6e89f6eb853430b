import { afterEach, describe, expect, it } from "vitest";
import { type HttpEndpoint, serveHttp } from "../../../src/cli/http.js";
import { createRegistry } from "../../../src/cli/metrics.js";
import { ConsoleFeed } from "../../../src/console/feed.js";
import {
  ADMIN_ACTIONS,
  type AdminAction,
  type AdminRequest,
  createConsole,
  operatorActions,
} from "../../../src/console/index.js";
import { createLogger, type KeyLayout } from "../../../src/node/index.js";
import { testSpace, waitFor } from "../../helpers/context.js";

const logger = createLogger({ name: "console-test", role: "master", level: "silent" });
const since = "2026-01-01T00:00:00.000Z";

async function seed(
  client: ReturnType<typeof testSpace>["client"],
  keys: KeyLayout,
  workers: number,
  tasks: number,
) {
  // Registrations and statuses live under a worker's lease (one without is not trusted).
  const { ID: lease } = await client.leaseClient.leaseGrant({ TTL: 60 });
  const put = (key: string, value: string) =>
    client.kv.put({ key: Buffer.from(key), value: Buffer.from(value), lease });
  for (let w = 1; w <= workers; w++) {
    const name = `w${w}`;
    await put(keys.worker(name), JSON.stringify({ name, host: "h", pid: w, version: "0", startedAt: since }));
  }
  for (let t = 0; t < tasks; t++) {
    const worker = `w${(t % workers) + 1}`;
    await client
      .put(keys.task(worker, `task-${t}`))
      .value(JSON.stringify({ id: `task-${t}`, group: `g${t % 2}` }));
    await put(
      keys.status(worker, `task-${t}`),
      JSON.stringify({
        state: t === 0 ? "failed" : "running",
        attempt: 1,
        since,
        error: t === 0 ? "boom" : undefined,
      }),
    );
  }
}

const feeds: ConsoleFeed[] = [];
/** A feed over the test's root, stopped after the test. */
function feedOver(space: ReturnType<typeof testSpace>, options: { admin: boolean }) {
  const feed = new ConsoleFeed({ client: space.client, root: space.root, logger, ...options });
  feeds.push(feed);
  return feed;
}

const endpoints: HttpEndpoint[] = [];
afterEach(async () => {
  for (const feed of feeds.splice(0)) feed.stop();
  await Promise.all(endpoints.splice(0).map((endpoint) => endpoint.close()));
});

async function serveConsole(space: ReturnType<typeof testSpace>, admin?: { token: string; done: string[] }) {
  const webConsole = createConsole({
    client: space.client,
    root: space.root,
    logger,
    admin: admin && {
      token: admin.token,
      run: async (action: AdminAction, request: AdminRequest) => {
        admin.done.push(`${action} ${request.worker ?? ""}`.trim());
        return { action };
      },
    },
  });
  const endpoint = await serveHttp(
    "127.0.0.1:0",
    {
      readiness: () => ({ ready: true, reasons: [] }),
      status: () => ({}),
      metrics: createRegistry(),
      console: webConsole.routes,
    },
    logger,
  );
  endpoints.push({
    url: endpoint.url,
    close: async () => {
      webConsole.stop();
      await endpoint.close();
    },
  });
  return endpoint.url;
}

describe("ConsoleFeed", () => {
  it("serves every viewer asking at once, and again while nothing changed, from one read and one build", async () => {
    const space = testSpace("console-feed");
    await seed(space.client, space.keys, 3, 30);
    const feed = feedOver(space, { admin: false });

    const snapshots = await Promise.all(Array.from({ length: 25 }, () => feed.snapshot()));
    const again = await feed.snapshot();

    expect(feed.reads).toBe(1);
    expect(feed.builds).toBe(1);
    expect(new Set([...snapshots, again])).toEqual(new Set([again]));
    expect(again.totals).toEqual({ workers: 3, tasks: 30, notRunning: 1, groups: ["g0", "g1"] });
    expect(again.notRunning).toEqual([
      expect.objectContaining({ worker: "w1", id: "task-0", error: "boom" }),
    ]);
  });

  it("rebuilds from its watch once the revision moved: a worker's leave shows in the next snapshot", async () => {
    const space = testSpace("console-change");
    await seed(space.client, space.keys, 3, 30);
    const feed = feedOver(space, { admin: false });
    const before = await feed.snapshot();

    await space.client.delete().key(space.keys.worker("w3"));
    const changed = await waitFor("a snapshot without w3", async () => {
      const snapshot = await feed.snapshot();
      return snapshot.totals.workers === 2 ? snapshot : undefined;
    });

    expect(changed.revision).toBeGreaterThan(before.revision);
    expect(feed.builds).toBeGreaterThanOrEqual(2);
    // The change came through the watch: the cluster was read once, at the start.
    expect(feed.reads).toBe(1);
    expect(changed.workers.find((w) => w.name === "w3")).toMatchObject({ registered: false, tasks: 10 });
    // The balance is the registered workers': the gone worker's 10 tasks do not raise their mean.
    expect(changed.balance).toEqual({ min: 10, max: 10, mean: 10 });
  });

  it("finds where a task runs by a part of its id, the exact match first", async () => {
    const space = testSpace("console-search");
    await seed(space.client, space.keys, 2, 12);
    const feed = feedOver(space, { admin: false });

    const result = await feed.search("task-1");

    expect(result.total).toBe(3); // task-1, task-10, task-11
    expect(result.matches[0]).toMatchObject({
      id: "task-1",
      worker: "w2",
      registered: true,
      status: { state: "running" },
    });
    expect(result.matches.map((m) => m.id).sort()).toEqual(["task-1", "task-10", "task-11"]);
  });
});

describe("the schedule history in the console", () => {
  it("charts the recent schedules, refusals included, and tells a searched task's moves as records are added", async () => {
    const space = testSpace("console-history");
    await seed(space.client, space.keys, 2, 4);
    const record = (
      at: string,
      moves: { id: string; from?: string; to?: string }[],
      outcome = "applied",
    ) => ({
      at,
      leader: "m1",
      epoch: 1,
      outcome,
      reasons: ["workers"],
      workers: ["w1", "w2"],
      tasks: 4,
      added: 0,
      removed: 0,
      moved: moves.length,
      unassigned: 0,
      moves,
      ...(outcome === "refused" ? { refusal: "removal guard: …" } : {}),
    });
    await space.client
      .put(space.keys.history(10))
      .value(JSON.stringify(record(since, [{ id: "task-1", to: "w2" }])));
    const feed = feedOver(space, { admin: false });
    const first = await feed.snapshot();

    await space.client
      .put(space.keys.history(20))
      .value(JSON.stringify(record("2026-01-01T00:01:00.000Z", [{ id: "task-1", from: "w2", to: "w1" }])));
    await space.client
      .put(space.keys.history(30))
      .value(JSON.stringify(record("2026-01-01T00:02:00.000Z", [], "refused")));
    const later = await waitFor("three schedules", async () => {
      const snapshot = await feed.snapshot();
      return snapshot.schedules.length === 3 ? snapshot : undefined;
    });
    const found = await feed.search("task-1");

    expect(first.schedules.map((s) => s.revision)).toEqual([10]);
    expect(later.schedules.map((s) => [s.revision, s.outcome, s.moved, s.workers])).toEqual([
      [10, "applied", 1, 2],
      [20, "applied", 1, 2],
      [30, "refused", 0, 2],
    ]);
    expect(found.moves.map(({ from, to }) => [from, to])).toEqual([
      [undefined, "w2"],
      ["w2", "w1"],
    ]);
  });
});

describe("operator actions", () => {
  it("are the operator commands' own: a cordon and a pause show in the next snapshot, an unknown worker is refused", async () => {
    const space = testSpace("console-ops");
    await seed(space.client, space.keys, 2, 4);
    const run = operatorActions(space.client, space.root);
    const feed = feedOver(space, { admin: true });

    await run("cordon", { worker: "w1", reason: "disk" });
    await run("pause", { reason: "incident" });
    const snapshot = await waitFor("the cordon and the pause", async () => {
      const s = await feed.snapshot();
      return s.paused && s.workers[0].cordon ? s : undefined;
    });

    expect(snapshot.workers.map((w) => [w.name, w.cordon])).toEqual([
      ["w1", "cordon"],
      ["w2", undefined],
    ]);
    expect(snapshot.paused).toMatchObject({ reason: "incident" });
    // Who did what: the newest audit records, as the console's token label.
    expect(snapshot.actions.map(({ action, worker, by, reason }) => [action, worker, by, reason])).toEqual([
      ["cordon", "w1", "console", "disk"],
      ["pause", undefined, "console", "incident"],
    ]);
    await expect(run("drain", { worker: "nobody" })).rejects.toMatchObject({ code: "ERR_UNKNOWN_WORKER" });
    await expect(run("cordon", {})).rejects.toMatchObject({ code: "ERR_CONFIG" });
  });
});

describe("console routes", () => {
  it("serve the page, its scripts and a live event stream of snapshots", async () => {
    const space = testSpace("console-http");
    await seed(space.client, space.keys, 2, 4);
    const url = await serveConsole(space);

    const page = await fetch(`${url}/`);
    const script = await fetch(`${url}/console/console.js`);
    const events = await fetch(`${url}/console/events`);
    const reader = events.body!.getReader();
    let text = "";
    const snapshotEvent = /event: snapshot\ndata: (.*)\n\n/;
    while (!snapshotEvent.test(text)) text += new TextDecoder().decode((await reader.read()).value);
    await reader.cancel();

    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toContain("text/html");
    expect(await page.text()).toContain("escheduler console");
    expect(script.headers.get("content-type")).toContain("text/javascript");
    expect(events.headers.get("content-type")).toBe("text/event-stream");
    const snapshot = JSON.parse(snapshotEvent.exec(text)![1]);
    expect(snapshot).toMatchObject({ root: space.root, admin: false, totals: { workers: 2, tasks: 4 } });
  });

  it("refuse actions when admin is off (403), without or with a wrong token (401), not sent as JSON (415), and run them with it", async () => {
    const readOnly = await serveConsole(testSpace("console-ro"));
    const done: string[] = [];
    const admin = await serveConsole(testSpace("console-admin"), { token: "s3cret-token", done });
    const post = (base: string, action: string, token?: string, type = "application/json") =>
      fetch(`${base}/console/actions/${action}`, {
        method: "POST",
        headers: { "Content-Type": type, ...(token ? { Authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify({ worker: "w1" }),
      });

    const off = await post(readOnly, "cordon", "s3cret-token");
    const missing = await post(admin, "cordon");
    const wrong = await post(admin, "cordon", "guess");
    const simple = await post(admin, "cordon", "s3cret-token", "text/plain");
    const unknown = await post(admin, "reboot", "s3cret-token");
    const ok = await post(admin, "cordon", "s3cret-token");

    expect([off.status, missing.status, wrong.status, simple.status, unknown.status, ok.status]).toEqual([
      403, 401, 401, 415, 404, 200,
    ]);
    expect(await ok.json()).toEqual({ action: "cordon" });
    expect(done).toEqual(["cordon w1"]);
  });

  it("guard every action alike, the task actions and release included: POST only, the token, a JSON body", async () => {
    const done: string[] = [];
    const url = await serveConsole(testSpace("console-guard"), { token: "s3cret-token", done });
    const send = (action: string, init: { method?: string; token?: string; type?: string }) =>
      fetch(`${url}/console/actions/${action}`, {
        method: init.method ?? "POST",
        headers: {
          "Content-Type": init.type ?? "application/json",
          ...(init.token ? { Authorization: `Bearer ${init.token}` } : {}),
        },
        body: init.method === "GET" ? undefined : JSON.stringify({ task: "t1", worker: "w1" }),
      });

    const statuses = [];
    for (const action of ADMIN_ACTIONS) {
      const answers = await Promise.all([
        send(action, { method: "GET", token: "s3cret-token" }),
        send(action, {}),
        send(action, { token: "s3cret-token", type: "text/plain" }),
      ]);
      statuses.push([action, ...answers.map((answer) => answer.status)]);
    }

    expect(ADMIN_ACTIONS).toEqual(
      expect.arrayContaining(["restart", "move", "pin", "unpin", "reset", "release"]),
    );
    expect(statuses).toEqual(ADMIN_ACTIONS.map((action) => [action, 405, 401, 415]));
    expect(done).toEqual([]);
  });
});
