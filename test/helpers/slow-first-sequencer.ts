import { relative } from "node:path";
import { BaseSequencer, type TestSpecification } from "vitest/node";

/** What a file of each kind takes when no earlier run on this machine timed it (ms, a slow machine's). */
const ESTIMATES: Array<[RegExp, number]> = [
  [/\/test\/e2e\/soak\//, 120_000],
  [/\/test\/e2e\//, 20_000],
  [/\/test\/integration\//, 10_000],
];
const OTHER_FILE = 2_000;

/**
 * Runs the longest test files first, so that no long file starts last and holds the run while the
 * other workers idle. Vitest's own order does so only from durations cached by an earlier run; a
 * fresh clone (CI) has none, and there it puts larger files first, which ran the two-minute soak, a
 * small file, last of all. Here a file's cached duration counts when there is one, else an estimate
 * by its kind; files that failed last time still go first.
 */
export class SlowFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const { cache, config } = this.ctx;
    const weighed = files.map((file) => {
      const cached = cache.getFileTestResults(`${file.project.name}:${relative(config.root, file.moduleId)}`);
      return { file, failed: cached?.failed ?? false, ms: cached?.duration ?? estimate(file.moduleId) };
    });
    weighed.sort((a, b) => Number(b.failed) - Number(a.failed) || b.ms - a.ms);
    return weighed.map(({ file }) => file);
  }
}

function estimate(path: string): number {
  return ESTIMATES.find(([kind]) => kind.test(path))?.[1] ?? OTHER_FILE;
}
