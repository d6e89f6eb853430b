/** The page's static files: plain HTML, CSS and JavaScript shipped in the package (no CDN, no build step). */
import { readFileSync } from "node:fs";

/** The repository's console/ folder (shipped in the package), reached the same way from src/console (tests) and dist/console (the binary). */
const ASSETS_DIR = new URL("../../console/", import.meta.url);

const CONTENT_TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  css: "text/css; charset=utf-8",
  js: "text/javascript; charset=utf-8",
};

export interface Asset {
  contentType: string;
  body: string;
}

/** The files the page is made of, by the path they are served at. */
export const ASSET_FILES: Record<string, string> = {
  "/": "index.html",
  "/console/console.css": "console.css",
  "/console/console.js": "console.js",
  "/console/charts.js": "charts.js",
  "/console/dom.js": "dom.js",
  "/console/tasks.js": "tasks.js",
  "/console/tools.js": "tools.js",
};

/** Reads every asset once; a missing file is a broken package and fails loudly at start-up. */
export function loadAssets(): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const [path, file] of Object.entries(ASSET_FILES)) {
    const extension = file.slice(file.lastIndexOf(".") + 1);
    assets.set(path, {
      contentType: CONTENT_TYPES[extension] ?? "application/octet-stream",
      body: readFileSync(new URL(file, ASSETS_DIR), "utf8"),
    });
  }
  return assets;
}
