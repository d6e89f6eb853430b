import { defineConfig } from "vitest/config";
import { SlowFirstSequencer } from "./test/helpers/slow-first-sequencer.js";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/helpers/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    fileParallelism: true,
    // Two files at a time: with three, a core's worth of other load made timing-bound tests fail.
    maxWorkers: 2,
    // The longest files first, also on a fresh clone: see the sequencer.
    sequence: { sequencer: SlowFirstSequencer },
  },
});
