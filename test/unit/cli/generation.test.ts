import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { afterEach, describe, expect, it } from "vitest";
import { parseConfig, workerConfigSchema } from "../../../src/cli/config.js";
import { addSetting, resolveOptions } from "../../../src/cli/options.js";
import { rolloutLine } from "../../../src/cli/rollout-view.js";
import { generationOrder } from "../../../src/master/rollout.js";
import { registrationFields } from "../../../src/worker/registration-fields.js";

function workerCommand(args: string[]): Record<string, unknown> {
  const command = new Command("worker").exitOverride().option("--config <file>");
  addSetting(command, "--generation <name>", "rollout generation");
  command.parse(args, { from: "user" });
  return resolveOptions(command);
}

const dir = mkdtempSync(join(tmpdir(), "escheduler-generation-"));

describe("a worker's rollout generation", () => {
  afterEach(() => {
    delete process.env.ESCHEDULER_GENERATION;
  });

  it("comes from --generation, over ESCHEDULER_GENERATION, over a config file", () => {
    const file = join(dir, "worker.json");
    writeFileSync(file, JSON.stringify({ generation: "from-file" }));
    const generation = (args: string[]) => parseConfig(workerConfigSchema, workerCommand(args)).generation;
    expect(generation(["--config", file])).toBe("from-file");
    process.env.ESCHEDULER_GENERATION = "from-env";
    expect(generation(["--config", file])).toBe("from-env");
    expect(generation(["--config", file, "--generation", "registry.example/app:v2"])).toBe(
      "registry.example/app:v2",
    );
  });

  it("rejects an empty or control-character generation with a one-line error naming the flag", () => {
    expect(() => parseConfig(workerConfigSchema, workerCommand(["--generation", ""]))).toThrow(
      /^invalid --generation "": must not be empty$/,
    );
    expect(() => registrationFields({ generation: "v\n2" }, "w1")).toThrow(
      "worker w1: generation must not contain control characters",
    );
  });

  it("defaults to a hash of the handler module's content: the same build gives the same generation, a new one another", () => {
    const handler = join(dir, "handler.mjs");
    writeFileSync(handler, "export default async function run() {}\n");
    const first = registrationFields({ handler }, "w1").generation;
    expect(first).toMatch(/^[0-9a-f]{12}$/);
    expect(registrationFields({ handler }, "w2").generation).toBe(first);
    writeFileSync(handler, "export default async function run() { /* v2 */ }\n");
    expect(registrationFields({ handler }, "w1").generation).not.toBe(first);
    expect(registrationFields({ handler, generation: "v7" }, "w1").generation).toBe("v7");
    expect(registrationFields({ handler: async () => {} }, "w1").generation).toBeUndefined();
  });
});

describe("the newest generation", () => {
  it("is the generation of the most recently registered worker, then the others by their latest registration", () => {
    const workers = [
      { generation: "v1", registeredAt: 10 },
      { generation: "v1", registeredAt: 12 },
      { generation: "v2", registeredAt: 40 },
      { registeredAt: 20 },
    ];
    expect(generationOrder(workers)).toEqual(["v2", "", "v1"]);
    // A rollback: a worker of the earlier build registers last, so its generation is the newest again.
    expect(generationOrder([...workers, { generation: "v1", registeredAt: 50 }])).toEqual(["v1", "v2", ""]);
  });

  it("is shown by status while two or more generations are registered", () => {
    const worker = (generation: string, startedAt: string) => ({ generation, startedAt, registered: true });
    expect(rolloutLine([worker("v1", "2026-12-01T10:00:00Z"), worker("v1", "2026-12-01T10:01:00Z")])).toBe(
      undefined,
    );
    expect(
      rolloutLine([
        worker("v1", "2026-12-01T10:00:00Z"),
        worker("v2", "2026-12-01T11:00:00Z"),
        worker("v1", "2026-12-01T10:01:00Z"),
        { generation: "v0", registered: false },
      ]),
    ).toBe("rollout: 2 generations, newest first: v2 (1 worker), v1 (2 workers)");
  });
});
