import { readFileSync } from "node:fs";

/** This package's version (from package.json, next to dist/ and src/). */
export function packageVersion(): string {
  try {
    const url = new URL("../../package.json", import.meta.url);
    return (JSON.parse(readFileSync(url, "utf8")) as { version: string }).version;
  } catch {
    return "unknown";
  }
}
