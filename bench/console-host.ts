/**
 * One console in a process of its own, so the bench reads its memory alone:
 * `node --import tsx bench/console-host.ts <watch|polling> <etcd endpoints> <root>`. It serves
 * `/events` (the snapshot stream), `/search?q=` and `/stats` ({reads, rssMB, peakMB, heapMB}) on a loopback
 * port it prints as `{"port": N}`, and exits on SIGTERM.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { ConsoleFeed } from "../src/console/feed.js";
import { createEtcdClient, silentLogger } from "../src/node/index.js";
import { PollingFeed } from "./console-polling.js";
import { peakMB } from "./process-stats.js";
import { readFileSync } from "node:fs";

const [mode, endpoints = "", root = ""] = process.argv.slice(2);
const client = createEtcdClient({ etcd: endpoints.split(",") });
const options = { client, root, logger: silentLogger };
const feed = mode === "polling" ? new PollingFeed(options) : new ConsoleFeed({ ...options, admin: false });

const server = createServer((request, response) => {
  const url = new URL(request.url ?? "/", "http://host");
  if (url.pathname === "/events") return feed.subscribe(response);
  const reply = (body: unknown) => {
    response.writeHead(200, { "Content-Type": "application/json" });
    response.end(JSON.stringify(body));
  };
  if (url.pathname === "/search" && feed instanceof ConsoleFeed) {
    void feed.search(url.searchParams.get("q") ?? "").then(reply);
    return;
  }
  // The heap after a full collection: what the console keeps (run with --expose-gc).
  (globalThis as { gc?: () => void }).gc?.();
  const heapMB = process.memoryUsage().heapUsed / 2 ** 20;
  reply({ reads: feed.reads, rssMB: rssMB(), peakMB: peakMB(process.pid), heapMB });
});
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});
process.once("SIGTERM", () => {
  feed.stop();
  server.closeAllConnections();
  server.close();
  client.close();
});

function rssMB(): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
  return match ? Number(match[1]) / 1024 : 0;
}
