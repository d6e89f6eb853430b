import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { afterEach, describe, expect, it } from "vitest";
import { masterConfigSchema, parseConfig, sharedConfigSchema, workerCap } from "../../../src/cli/config.js";
import { addNodeOptions, addSetting, resolveOptions } from "../../../src/cli/options.js";

describe("config", () => {
  it("fills the design's defaults", () => {
    const config = parseConfig(masterConfigSchema, {});
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
    const config = parseConfig(masterConfigSchema, { ttl: "2s", rebalanceWait: "500ms", etcd: "a:1, b:2" });
    expect(config.ttl).toBe(2_000);
    expect(config.rebalanceWait).toBe(500);
    expect(config.etcd).toEqual(["a:1", "b:2"]);
  });

  it.each([
    [{ ttl: "soon" }, '--ttl "soon"'],
    [{ ttl: "200ms" }, "--ttl"],
    [{ root: "a/b" }, '--root "a/b"'],
    [{ workers: "-3" }, "--workers"],
    [{ http: "nohost" }, '--http "nohost"'],
    [{ handoff: "later" }, '--handoff "later"'],
  ])("rejects %j with an error naming the field and value", (options, message) => {
    expect(() => parseConfig(masterConfigSchema, options)).toThrow(message);
    expect(() => parseConfig(masterConfigSchema, options)).toThrow(
      expect.objectContaining({ code: "ERR_CONFIG" }),
    );
  });

  it("caps workers at --max-workers, else --workers", () => {
    expect(workerCap({ workers: 3, maxWorkers: undefined })).toBe(3);
    expect(workerCap({ workers: 3, maxWorkers: 5 })).toBe(5);
  });
});

describe("where settings come from: flags, then environment variables, then --config", () => {
  const saved = { ...process.env };
  afterEach(() => {
    process.env = { ...saved };
  });

  /** Parses `args` as a worker-like command and returns the validated shared config. */
  function settings(args: string[]) {
    const command = addNodeOptions(new Command("worker").exitOverride());
    addSetting(command, "--stop-timeout <duration>", "per task");
    command.parse(args, { from: "user" });
    return parseConfig(
      sharedConfigSchema.extend({ stopTimeout: masterConfigSchema.shape.timeout }),
      resolveOptions(command),
    );
  }

  function configFile(settings: unknown): string {
    const path = join(mkdtempSync(join(tmpdir(), "escheduler-config-")), "config.json");
    writeFileSync(path, JSON.stringify(settings));
    return path;
  }

  it("reads every flag's ESCHEDULER_ variable, and a flag wins over it", () => {
    Object.assign(process.env, {
      ESCHEDULER_ETCD: "e:1",
      ESCHEDULER_ROOT: "envroot",
      ESCHEDULER_ETCD_PASSWORD: "secret",
      ESCHEDULER_TTL: "3s",
      ESCHEDULER_STOP_TIMEOUT: "7s",
    });
    expect(settings([])).toMatchObject({
      etcd: ["e:1"],
      root: "envroot",
      etcdPassword: "secret",
      ttl: 3_000,
      stopTimeout: 7_000,
    });
    expect(settings(["--root", "flag", "--ttl", "4s"])).toMatchObject({ root: "flag", ttl: 4_000 });
  });

  it("takes a --config file's settings (dashed or camel-case names) below flags and variables", () => {
    const path = configFile({
      "etcd-ca": "/tls/ca.pem",
      etcdUser: "app",
      root: "fileroot",
      ttl: "5s",
      etcd: ["f:1", "f:2"],
    });
    expect(settings(["--config", path])).toMatchObject({
      etcdCa: "/tls/ca.pem",
      etcdUser: "app",
      root: "fileroot",
      ttl: 5_000,
      etcd: ["f:1", "f:2"],
    });
    process.env.ESCHEDULER_ROOT = "envroot";
    expect(settings(["--config", path, "--ttl", "2s"])).toMatchObject({ root: "envroot", ttl: 2_000 });
  });

  it("refuses a --config setting the command does not have, or a file that is not a JSON object", () => {
    expect(() => settings(["--config", configFile({ generator: "x.mjs" })])).toThrow(
      /invalid --config ".*": unknown setting "generator"/,
    );
    expect(() => settings(["--config", configFile([1, 2])])).toThrow(/not a JSON object/);
    expect(() => settings(["--config", "/no/such/file.json"])).toThrow(
      /invalid --config "\/no\/such\/file.json": ENOENT/,
    );
  });
});
