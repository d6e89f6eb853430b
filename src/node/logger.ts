import { type Logger, pino } from "pino";

export type { Logger };

/**
 * A structured logger: JSON by default, readable lines on a terminal (coloured unless NO_COLOR is
 * set); every line carries name and role.
 */
export function createLogger(options: {
  name: string;
  role: string;
  level?: string;
  pretty?: boolean;
}): Logger {
  const pretty = options.pretty ?? Boolean(process.stdout.isTTY);
  const colorize = colorWanted(process.stdout);
  return pino({
    level: options.level ?? "info",
    base: { pid: process.pid },
    transport: pretty
      ? {
          target: "pino-pretty",
          options: { colorize, ignore: "pid,hostname", translateTime: "HH:MM:ss.l" },
        }
      : undefined,
  }).child({ name: options.name, role: options.role });
}

/** Colour only on a terminal, and never when NO_COLOR is set to anything (https://no-color.org) or TERM is dumb. */
export function colorWanted(
  stream: { isTTY?: boolean },
  env: Readonly<Record<string, string | undefined>> = process.env,
): boolean {
  return Boolean(stream.isTTY) && !env.NO_COLOR && env.TERM !== "dumb";
}

/**
 * The logger of the node `name`: one that already names it (the command line's, with `name`) is
 * used as it is, so the name is logged once; any other gets `{ [field]: name }`.
 */
export function nodeLogger(logger: Logger | undefined, field: "master" | "worker", name: string): Logger {
  const base = logger ?? silentLogger;
  return base.bindings().name === name ? base : base.child({ [field]: name });
}

/** A logger that writes nothing (library default). */
export const silentLogger: Logger = pino({ level: "silent" });

/** Plain JSON lines on stderr, for one-shot commands whose stdout is their answer (`status`, `probe`, `history`). */
export function stderrLogger(level = "warn"): Logger {
  return pino({ level, base: undefined }, pino.destination(2));
}
