/**
 * `npm run soak -- --minutes N --seed S`: the seeded fault soak against real processes (see
 * soak/run.ts). Prints one summary line; on a violation prints them with the command that replays the
 * seed and exits 1. `--keep` keeps the logs (processes, task events, etcd history) even on success.
 */
import { parseArgs } from "node:util";
import { summary } from "./report.js";
import { runSoak } from "./run.js";

function usage(message: string): never {
  console.error(`soak: ${message} (usage: npm run soak -- [--minutes N] [--seed S] [--keep] [--quiet])`);
  process.exit(2);
}

function numberFlag(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed < 0)
    usage(`--${name} must be a non-negative number, got ${JSON.stringify(value)}`);
  return parsed;
}

let flags: ReturnType<typeof parse>;
function parse() {
  return parseArgs({
    options: {
      minutes: { type: "string" },
      seed: { type: "string" },
      keep: { type: "boolean", default: false },
      quiet: { type: "boolean", default: false },
    },
    strict: true,
  }).values;
}
try {
  flags = parse();
} catch (error) {
  usage((error as Error).message);
}
const minutes = numberFlag(flags.minutes, "minutes", 10);
const seed = Math.floor(numberFlag(flags.seed, "seed", Math.floor(Math.random() * 1_000_000)));
const started = Date.now();
const result = await runSoak({
  seed,
  minutes,
  keep: flags.keep,
  log: flags.quiet
    ? undefined
    : (line) => console.error(`soak +${Math.round((Date.now() - started) / 1000)}s ${line}`),
});
console.log(summary(result));
for (const crash of result.crashes) console.error(`  crash: ${crash}`);
if (result.violations.length > 0 || flags.keep) console.error(`logs: ${result.dir}`);
if (result.violations.length > 0) {
  for (const violation of result.violations.slice(0, 50)) console.error(`  violation: ${violation}`);
  if (result.violations.length > 50) console.error(`  … and ${result.violations.length - 50} more`);
  console.error(`replay: npm run soak -- --seed ${seed} --minutes ${minutes}`);
  process.exit(1);
}
process.exit(0);
