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
    // Three files at a time on two cores: most end-to-end files wait on leases and processes, not the CPU.
    maxWorkers: 3,
    // The longest files first, also on a fresh clone: see the sequencer.
    sequence: { sequencer: SlowFirstSequencer },
  },
});
