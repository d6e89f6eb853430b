import { describe, expect, it } from "vitest";
import { testSpace } from "../../helpers/context.js";

describe("etcd client connection", () => {
  it("keeps an idle watch connected past etcd's keepalive enforcement (no GOAWAY 'too many pings')", async () => {
    const { client, root } = testSpace("idle");
    const watcher = await client.watch().prefix(`/${root}/quiet/`).create();
    const interruptions: string[] = [];
    watcher.on("disconnected", (error: Error) => interruptions.push(error.message));
    watcher.on("error", (error: Error) => interruptions.push(error.message));
    // etcd allows a ping per 5 s and strikes out a client after 3 early pings: 11 s covers that window twice.
    await new Promise((resolve) => setTimeout(resolve, 11_000)); // observing an idle connection
    await client.put(`/${root}/quiet/k`).value("1");
    expect(interruptions).toEqual([]);
    await watcher.cancel();
  }, 20_000);
});
