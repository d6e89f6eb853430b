/**
 * The console bench's baseline: the feed as it was before it was fed by a watch (main at 97774e4),
 * kept only to be measured beside it. Every second it asks etcd for the revision; when it moved it
 * re-reads the whole cluster (`readStatus`), the history tail and the audit trail, builds the snapshot
 * and pushes it; a slow read spaces the polls out to twice its length.
 */
import type { ServerResponse } from "node:http";
import type { Etcd3 } from "etcd3";
import { readStatus } from "../src/cli/status.js";
import { ACTIONS_SHOWN } from "../src/console/feed.js";
import { HISTORY_TAIL } from "../src/console/history.js";
import { consoleSnapshot } from "../src/console/snapshot.js";
import { keyLayout, type Logger } from "../src/node/index.js";
import { readAudit, readHistory } from "../src/operator/index.js";

const REFRESH_MS = 1_000;

export class PollingFeed {
  private readonly viewers = new Set<ServerResponse>();
  private timer?: NodeJS.Timeout;
  private revision = 0;
  private lastBuildMs = 0;
  private stopped = false;
  reads = 0;

  constructor(private readonly options: { client: Etcd3; root: string; logger: Logger }) {}

  subscribe(response: ServerResponse): void {
    response.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-store" });
    this.viewers.add(response);
    response.once("close", () => this.viewers.delete(response));
    if (this.timer === undefined) this.loop(0);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    for (const viewer of this.viewers) viewer.end();
  }

  private loop(delayMs: number): void {
    this.timer = setTimeout(async () => {
      await this.poll();
      if (!this.stopped) this.loop(Math.max(REFRESH_MS, 2 * this.lastBuildMs));
    }, delayMs);
  }

  private async poll(): Promise<void> {
    const { client, root, logger } = this.options;
    const keys = keyLayout(root);
    const head = await client.kv.range({ key: Buffer.from(keys.plan), count_only: true });
    if (Number(head.header.revision) === this.revision) return;
    const started = Date.now();
    const [{ report }, history, actions] = await Promise.all([
      readStatus(client, root, logger),
      readHistory(client, root, { limit: HISTORY_TAIL, logger }),
      readAudit(client, keys, { limit: ACTIONS_SHOWN, logger }),
    ]);
    this.reads++;
    this.revision = report.revision;
    const snapshot = consoleSnapshot(report, history, false, actions);
    this.lastBuildMs = Date.now() - started;
    const event = `event: snapshot\ndata: ${JSON.stringify(snapshot)}\n\n`;
    for (const viewer of this.viewers) viewer.write(event);
  }
}
