import { type Logger, pino } from "pino";

export type { Logger };

/** A structured logger: JSON by default, readable lines on a terminal; every line carries name and role. */
export function createLogger(options: {
  name: string;
  role: string;
  level?: string;
  pretty?: boolean;
}): Logger {
  const pretty = options.pretty ?? Boolean(process.stdout.isTTY);
  return pino({
    level: options.level ?? "info",
    base: { name: options.name, role: options.role, pid: process.pid },
    transport: pretty
      ? {
          target: "pino-pretty",
          options: { colorize: true, ignore: "pid,hostname", translateTime: "HH:MM:ss.l" },
        }
      : undefined,
  });
}

/** A logger that writes nothing (library default). */
export const silentLogger: Logger = pino({ level: "silent" });

/** Plain JSON lines on stderr, for one-shot commands whose stdout is their answer (`status`, `probe`, `history`). */
export function stderrLogger(level = "warn"): Logger {
  return pino({ level, base: undefined }, pino.destination(2));
}
