import { describe, expect, it } from "vitest";
import { summary } from "../../../soak/report.js";
import { runSoak } from "../../../soak/run.js";
import { ensureBuilt } from "../../helpers/cli.js";

// `npm run soak -- --seed 7 --minutes 2` replays this run as closely as the processes allow.
const SEED = 7;
const MINUTES = 2;

describe("the seeded fault soak (2 masters, 5 workers, a 3-member etcd behind proxies, real processes)", () => {
  it(
    `keeps every promise through ${MINUTES} minutes of seed ${SEED}'s faults`,
    async () => {
      await ensureBuilt();
      const result = await runSoak({ seed: SEED, minutes: MINUTES });
      console.log(summary(result));
      const faults = [...result.faults.values()].reduce((sum, count) => sum + count, 0);
      expect(faults).toBeGreaterThan(10);
      expect(result.rounds).toBeGreaterThan(1);
      expect(result.starts).toBeGreaterThan(0);
      expect(result.violations, `replay: npm run soak -- --seed ${SEED} --minutes ${MINUTES}`).toEqual([]);
    },
    8 * 60_000,
  );
});
