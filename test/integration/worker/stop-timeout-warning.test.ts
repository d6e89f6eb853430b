import { describe, expect, it } from "vitest";
import { testSpace } from "../../helpers/context.js";
import { capturingLogger, RecordingHandler, testWorker } from "./fixtures.js";

const WARNING = "stop timeout exceeds the lease margin";

describe("the stop-timeout warning at start", () => {
  it("is not raised by the defaults (issue 21: defaults must not warn)", async () => {
    const { root } = testSpace("stop-warning-default");
    const { logger, lines } = capturingLogger();
    const worker = testWorker({
      root,
      handler: new RecordingHandler(),
      logger,
      ttlMs: 10_000,
      stopTimeoutMs: undefined,
    });
    await worker.start();
    expect(lines.filter((line) => line.includes(WARNING))).toEqual([]);
  });

  it("is raised once when a stop timeout set above the lease margin says stops may outlast it", async () => {
    const { root } = testSpace("stop-warning-set");
    const { logger, lines } = capturingLogger();
    const worker = testWorker({
      root,
      handler: new RecordingHandler(),
      logger,
      ttlMs: 10_000,
      stopTimeoutMs: 30_000,
    });
    await worker.start();
    const warnings = lines.filter((line) => line.includes(WARNING)).map((line) => JSON.parse(line));
    expect(warnings).toEqual([
      expect.objectContaining({ stopTimeoutMs: 30_000, leaseMarginMs: 3_000, ttlMs: 10_000 }),
    ]);
  });
});
