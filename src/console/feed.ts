/**
 * The console's one reader of etcd: the cluster picture kept in memory by ONE compaction-safe watch
 * (`ClusterWatch`: a read of the ranges at r0, then every event under the root in order), so a change
 * costs O(change) to apply. Snapshots are rebuilt from memory, at most once per revision and paced
 * (a burst of events makes one snapshot), and pushed to every viewer as server-sent events.
 *
 * - Viewers never cause reads of their own: a thousand open pages cost what one does; an answer to
 *   `snapshot()` or `search()` comes from memory too.
 * - The watch runs only while someone watches or asks: it starts with the first viewer or question and
 *   is closed `idleMs` after the last viewer left or the last question (then the memory is freed; the
 *   next one pays one read of the cluster again).
 * - A bad record is skipped or repaired with one warning naming its key, as `escheduler status` does.
 */
import type { ServerResponse } from "node:http";
import type { Etcd3 } from "etcd3";
import { ClusterWatch } from "../cluster-view/index.js";
import { firstLine } from "../errors.js";
import { type KeyLayout, keyLayout, type Logger, type TaskStatus } from "../node/index.js";
import { HISTORY_TAIL, movesOf, type TaskMove } from "./history.js";
import { type ConsoleSnapshot, consoleSnapshot, statusReportOf } from "./snapshot.js";

/** How long the watch stays open after the last viewer left or the last question. */
export const IDLE_MS = 60_000;
/** Least time between two pushes; a slow build spaces them to twice its length. */
export const PUSH_GAP_MS = 200;
/** Events arriving this close together (a schedule's transactions) make one snapshot. */
const COALESCE_MS = 20;
/** A comment line keeps idle event streams open through proxies. */
const KEEPALIVE_MS = 15_000;
/** How long to wait before starting the watch again after its first read failed. */
const RETRY_MS = 1_000;
/** Most matches a search returns. */
export const SEARCH_LIMIT = 50;
/** The newest operator actions the page lists (`escheduler history` has the last 1,000). */
export const ACTIONS_SHOWN = 10;

export interface ConsoleFeedOptions {
  client: Etcd3;
  root: string;
  logger: Logger;
  admin: boolean;
  idleMs?: number;
  pushGapMs?: number;
}

interface Built {
  revision: number;
  snapshot: ConsoleSnapshot;
  /** The snapshot as one server-sent event, serialized once for every viewer. */
  event: string;
}

/** Where a task is assigned now, and its status there. */
export interface TaskLocation {
  id: string;
  worker: string;
  registered: boolean;
  status?: TaskStatus;
}

export interface SearchResult {
  query: string;
  revision: number;
  /** Matching tasks in all (only the first SEARCH_LIMIT are listed). */
  total: number;
  matches: TaskLocation[];
  /** The exact match's recent moves from the schedule history (`escheduler history --task` has them all). */
  moves: TaskMove[];
}

export class ConsoleFeed {
  private readonly keys: KeyLayout;
  private readonly idleMs: number;
  private readonly pushGapMs: number;
  private readonly viewers = new Set<ServerResponse>();
  private watch?: ClusterWatch;
  private starting?: Promise<ClusterWatch>;
  private latest?: Built;
  private pushTimer?: NodeJS.Timeout;
  private idleTimer?: NodeJS.Timeout;
  private keepAlive?: NodeJS.Timeout;
  private nextPushAt = 0;
  private lastBuildMs = 0;
  private lastSentAt = 0;
  private failing = false;
  private stopped = false;
  private watchReads = 0;
  /** Snapshots built from memory (one per revision at most, whatever the number of viewers). */
  builds = 0;

  constructor(private readonly options: ConsoleFeedOptions) {
    this.keys = keyLayout(options.root);
    this.idleMs = options.idleMs ?? IDLE_MS;
    this.pushGapMs = options.pushGapMs ?? PUSH_GAP_MS;
  }

  /** Full reads of the cluster so far: one per start of the watch, and one per resync after compaction. */
  get reads(): number {
    return this.watchReads + (this.watch?.reads ?? 0);
  }

  /** True while the watch is open (someone watches, or asked within `idleMs`). */
  get watching(): boolean {
    return this.watch !== undefined;
  }

  /** The snapshot at the revision the watch has reached. */
  async snapshot(): Promise<ConsoleSnapshot> {
    const watch = await this.started();
    this.armIdle();
    return this.build(watch).snapshot;
  }

  /** Tasks whose id contains `query` (case-insensitive), an exact match first. */
  async search(query: string): Promise<SearchResult> {
    const { state } = await this.started();
    this.armIdle();
    const needle = query.toLowerCase();
    const found: [string, string][] = [];
    for (const [worker, ids] of state.assignments()) {
      for (const id of ids.keys()) if (id.toLowerCase().includes(needle)) found.push([worker, id]);
    }
    // Exact matches first, then in key order (worker, then id), as a read of the task keys lists them.
    const rank = ([worker, id]: [string, string]) => `${id === query ? 0 : 1}${worker}\u0000${id}`;
    const shown = found
      .map((match) => [rank(match), match] as const)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .slice(0, SEARCH_LIMIT);
    const matches = shown.map(([, [worker, id]]): TaskLocation => ({
      id,
      worker,
      registered: state.isRegistered(worker),
      status: state.statusOf(worker, id),
    }));
    const moves = movesOf(state.records.schedules(HISTORY_TAIL), query);
    return { query, revision: state.revision, total: found.length, matches, moves };
  }

  /** Streams snapshots to `response` as server-sent events until the client goes away. */
  subscribe(response: ServerResponse): void {
    response.writeHead(200, {
      "Content-Type": "text/event-stream",
      "Cache-Control": "no-store",
      Connection: "keep-alive",
    });
    response.write(`retry: ${2 * RETRY_MS}\n\n`);
    this.viewers.add(response);
    clearTimeout(this.idleTimer);
    response.once("close", () => {
      this.viewers.delete(response);
      if (this.viewers.size === 0) {
        clearInterval(this.keepAlive);
        this.keepAlive = undefined;
        this.armIdle();
      }
    });
    this.keepAlive ??= setInterval(() => {
      if (Date.now() - this.lastSentAt > KEEPALIVE_MS) this.send(": keep-alive\n\n");
    }, KEEPALIVE_MS);
    if (this.latest && this.latest.revision === this.watch?.state.revision) response.write(this.latest.event);
    else this.watchForViewers();
  }

  /** Ends every stream and closes the watch. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.pushTimer);
    clearTimeout(this.idleTimer);
    clearInterval(this.keepAlive);
    for (const viewer of this.viewers) viewer.end();
    this.viewers.clear();
    this.closeWatch();
  }

  /** Starts the watch for the viewers (retrying while any remain) and pushes its first snapshot. */
  private watchForViewers(): void {
    this.started().then(
      () => this.schedulePush(),
      (error: unknown) => {
        if (this.stopped || this.viewers.size === 0) return;
        this.problem(error);
        setTimeout(() => this.watchForViewers(), RETRY_MS).unref();
      },
    );
  }

  /** The open watch, or one started now; callers that arrive meanwhile share the start. */
  private started(): Promise<ClusterWatch> {
    if (this.watch) return Promise.resolve(this.watch);
    this.starting ??= this.open().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  private async open(): Promise<ClusterWatch> {
    if (this.stopped) throw new Error("the console is stopped");
    const watch = new ClusterWatch(this.options.client, this.keys, this.options.logger);
    watch.on("changed", () => this.changed());
    watch.on("error", (error) => this.problem(error));
    try {
      await watch.start();
    } catch (error) {
      await watch.close();
      throw error;
    }
    if (this.stopped) {
      await watch.close();
      throw new Error("the console is stopped");
    }
    this.watch = watch;
    this.recovered();
    if (this.viewers.size === 0) this.armIdle();
    return watch;
  }

  private closeWatch(): void {
    const watch = this.watch;
    if (!watch) return;
    this.watchReads += watch.reads;
    this.watch = undefined;
    this.latest = undefined;
    void watch.close();
  }

  /** Closes the watch `idleMs` from now unless a viewer comes or someone asks again. */
  private armIdle(): void {
    clearTimeout(this.idleTimer);
    if (this.viewers.size > 0 || this.stopped) return;
    this.idleTimer = setTimeout(() => this.closeWatch(), this.idleMs);
    this.idleTimer.unref();
  }

  private changed(): void {
    this.recovered();
    this.schedulePush();
  }

  /** One push after a change, at least COALESCE_MS later and no sooner than the pacing allows. */
  private schedulePush(): void {
    if (this.pushTimer || this.viewers.size === 0 || this.stopped) return;
    const wait = Math.max(COALESCE_MS, this.nextPushAt - Date.now());
    this.pushTimer = setTimeout(() => {
      this.pushTimer = undefined;
      if (!this.watch || this.viewers.size === 0) return;
      const before = this.latest;
      const built = this.build(this.watch);
      if (built !== before) this.send(built.event);
      // Builds take at most a third of the process's time however fast events come.
      this.nextPushAt = Date.now() + Math.max(this.pushGapMs, 2 * this.lastBuildMs);
    }, wait);
  }

  private build(watch: ClusterWatch): Built {
    const { state } = watch;
    if (this.latest && this.latest.revision === state.revision) return this.latest;
    const started = Date.now();
    const report = statusReportOf(this.options.root, state);
    const snapshot = consoleSnapshot(
      report,
      state.records.schedules(HISTORY_TAIL),
      this.options.admin,
      state.records.actions(ACTIONS_SHOWN),
    );
    const event = `event: snapshot\ndata: ${JSON.stringify(snapshot)}\n\n`;
    this.builds++;
    this.lastBuildMs = Date.now() - started;
    this.latest = { revision: state.revision, snapshot, event };
    return this.latest;
  }

  private problem(error: unknown): void {
    if (!this.failing) this.options.logger.warn({ err: error }, "console cannot read etcd");
    this.failing = true;
    this.send(`event: problem\ndata: ${JSON.stringify({ error: firstLine(error) })}\n\n`);
  }

  private recovered(): void {
    if (!this.failing) return;
    this.failing = false;
    this.options.logger.info("console reads etcd again");
    // The page shows the problem until it gets a snapshot: send the current one even if unchanged.
    if (this.latest) this.send(this.latest.event);
  }

  private send(event: string): void {
    this.lastSentAt = Date.now();
    for (const viewer of this.viewers) viewer.write(event);
  }
}
