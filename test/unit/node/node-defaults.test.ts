import { Etcd3 } from "etcd3";
import { afterAll, describe, expect, it } from "vitest";
import { DEFAULTS, Master, Worker } from "../../../src/index.js";

describe("the library's Master and Worker", () => {
  // Never contacted: the nodes are built, not started.
  const client = new Etcd3({ hosts: "127.0.0.1:1" });
  afterAll(() => client.close());

  it("take the same defaults as the command line", () => {
    const master = new Master({ client, generator: () => [] });
    const worker = new Worker({ client });
    expect(master.keys.root).toBe(DEFAULTS.root);
    expect(worker.keys.root).toBe(DEFAULTS.root);
  });

  it("fail the same way without endpoints: ERR_CONFIG at construction", () => {
    const error = { code: "ERR_CONFIG", message: expect.stringMatching(/needs an etcd client or endpoints/) };
    expect(() => new Master({ etcd: [], generator: () => [] })).toThrow(expect.objectContaining(error));
    expect(() => new Worker({ etcd: [] })).toThrow(expect.objectContaining(error));
  });
});
