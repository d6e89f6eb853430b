/**
 * A bare etcd watch of one prefix in a thread of its own, for the worker benchmark: each put event is
 * stamped on arrival (`performance.timeOrigin + performance.now()`, comparable across threads) and
 * posted to the parent as `{ id, at }` (id: the key after the prefix). With its own event loop and
 * connection, what the worker under test does in the main thread does not delay it. Posts "watching"
 * once the watch is up; the parent terminates it.
 */
import { performance } from "node:perf_hooks";
import { parentPort, workerData } from "node:worker_threads";
import { Etcd3 } from "etcd3";

const { hosts, prefix } = workerData;
const client = new Etcd3({ hosts });
const watcher = await client.watch().prefix(prefix).create();
watcher.on("put", (kv) => {
  const at = performance.timeOrigin + performance.now();
  parentPort.postMessage({ id: kv.key.toString().slice(prefix.length), at });
});
parentPort.postMessage("watching");
