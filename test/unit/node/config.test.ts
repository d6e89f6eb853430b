import { describe, expect, it } from "vitest";
import { masterConfigSchema, parseConfig, sharedConfigSchema, workerCap } from "../../../src/node/config.js";

describe("config", () => {
  it("fills the design's defaults", () => {
    const config = parseConfig(masterConfigSchema, {}, {});
    expect(config).toMatchObject({
      etcd: ["127.0.0.1:2379"],
      root: "escheduler",
      ttl: 10_000,
      interval: 60_000,
      rebalanceWait: 5_000,
      timeout: 30_000,
      barrierTimeout: 300_000,
      handoff: "wait",
    });
  });

  it("parses ms durations and comma-separated endpoints", () => {
    const config = parseConfig(
      masterConfigSchema,
      { ttl: "2s", rebalanceWait: "500ms", etcd: "a:1, b:2" },
      {},
    );
    expect(config.ttl).toBe(2_000);
    expect(config.rebalanceWait).toBe(500);
    expect(config.etcd).toEqual(["a:1", "b:2"]);
  });

  it("reads environment variables, with flags taking precedence", () => {
    const env = { ESCHEDULER_ETCD: "e:1", ESCHEDULER_ROOT: "envroot", ESCHEDULER_ETCD_PASSWORD: "secret" };
    expect(parseConfig(sharedConfigSchema, {}, env)).toMatchObject({
      etcd: ["e:1"],
      root: "envroot",
      etcdPassword: "secret",
    });
    expect(parseConfig(sharedConfigSchema, { root: "flag" }, env).root).toBe("flag");
  });

  it.each([
    [{ ttl: "soon" }, '--ttl "soon"'],
    [{ ttl: "200ms" }, "--ttl"],
    [{ root: "a/b" }, '--root "a/b"'],
    [{ workers: "-3" }, "--workers"],
    [{ http: "nohost" }, '--http "nohost"'],
    [{ handoff: "later" }, '--handoff "later"'],
  ])("rejects %j with an error naming the field and value", (options, message) => {
    expect(() => parseConfig(masterConfigSchema, options, {})).toThrow(message);
    expect(() => parseConfig(masterConfigSchema, options, {})).toThrow(
      expect.objectContaining({ code: "ERR_CONFIG" }),
    );
  });

  it("caps workers at --max-workers, else --workers", () => {
    expect(workerCap({ workers: 3, maxWorkers: undefined })).toBe(3);
    expect(workerCap({ workers: 3, maxWorkers: 5 })).toBe(5);
  });
});
