import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { afterEach, describe, expect, it } from "vitest";
import { parseConfig, workerConfigSchema } from "../../../src/cli/config.js";
import { labelOption } from "../../../src/cli/labels.js";
import { resolveOptions } from "../../../src/cli/options.js";

function workerCommand(args: string[]): Record<string, unknown> {
  const command = new Command("worker").exitOverride().addOption(labelOption()).option("--config <file>");
  command.parse(args, { from: "user" });
  return resolveOptions(command);
}

describe("worker labels from flags, ESCHEDULER_LABELS and a config file", () => {
  afterEach(() => {
    delete process.env.ESCHEDULER_LABELS;
  });

  it("collects repeated --label flags", () => {
    const options = workerCommand(["--label", "zone=eu-1a", "--label", "gpu=true"]);
    expect(parseConfig(workerConfigSchema, options).labels).toEqual({ zone: "eu-1a", gpu: "true" });
  });

  it("reads ESCHEDULER_LABELS as comma-separated k=v, and flags win over it", () => {
    process.env.ESCHEDULER_LABELS = "zone=eu-1b, rack=r7";
    expect(parseConfig(workerConfigSchema, workerCommand([])).labels).toEqual({ zone: "eu-1b", rack: "r7" });
    expect(parseConfig(workerConfigSchema, workerCommand(["--label", "zone=eu-1c"])).labels).toEqual({
      zone: "eu-1c",
    });
  });

  it("reads labels as an object from a config file", () => {
    const file = join(mkdtempSync(join(tmpdir(), "escheduler-labels-")), "worker.json");
    writeFileSync(file, JSON.stringify({ labels: { zone: "eu-1a", "example.com/gpu": "" } }));
    expect(parseConfig(workerConfigSchema, workerCommand(["--config", file])).labels).toEqual({
      zone: "eu-1a",
      "example.com/gpu": "",
    });
  });

  it.each([
    [["--label", "zone"], /invalid --labels .*expected key=value/],
    [["--label", "bad key=1"], /label key "bad key"/],
    [["--label", `zone=${"x".repeat(64)}`], /value must be empty or 1–63 characters/],
  ])("refuses %j with one ERR_CONFIG line", (args, message) => {
    expect(() => parseConfig(workerConfigSchema, workerCommand(args))).toThrow(
      expect.objectContaining({ code: "ERR_CONFIG", message: expect.stringMatching(message) }),
    );
  });

  it("refuses labels in a config file that are not an object of strings", () => {
    expect(() => parseConfig(workerConfigSchema, { labels: { zone: 3 } })).toThrow(
      /label zone: the value must be a string/,
    );
  });
});
