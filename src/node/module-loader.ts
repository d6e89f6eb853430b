import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { EschedulerError, firstLine } from "../errors.js";

/**
 * Imports a user module (ESM or CommonJS) by path and returns its default export.
 * Throws ERR_MODULE with a one-line reason when it cannot be read or has no default export.
 */
export async function importDefaultExport(path: string, what: string): Promise<unknown> {
  const absolute = isAbsolute(path) ? path : resolve(process.cwd(), path);
  let loaded: Record<string, unknown>;
  try {
    loaded = (await import(pathToFileURL(absolute).href)) as Record<string, unknown>;
  } catch (error) {
    const reason = firstLine(error);
    throw new EschedulerError("ERR_MODULE", `cannot load ${what} module ${JSON.stringify(path)}: ${reason}`, {
      cause: error,
    });
  }
  // CommonJS modules arrive as { default: module.exports }; an ESM default may itself wrap one.
  let exported = loaded.default;
  if (
    exported &&
    typeof exported === "object" &&
    "default" in exported &&
    Object.keys(exported).length === 1
  ) {
    exported = (exported as { default: unknown }).default;
  }
  if (exported === undefined || exported === null) {
    throw new EschedulerError("ERR_MODULE", `${what} module ${JSON.stringify(path)} has no default export`);
  }
  return exported;
}
