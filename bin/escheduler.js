#!/usr/bin/env node
// The executable: runs the built CLI (dist/) and turns its result into the exit code.

// Once main has settled, nothing should keep the process alive; if something still does (a leaked
// socket or timer), exit anyway rather than hang a rollout.
function exitSoon(code) {
  process.exitCode = code;
  setTimeout(() => process.exit(code), 3_000).unref();
}

let cli;
try {
  cli = await import("../dist/cli/main.js");
} catch (error) {
  const missing = error?.code === "ERR_MODULE_NOT_FOUND" && String(error.message).includes("dist");
  console.error(
    missing
      ? "escheduler: the build output is missing: run `npm run build` (or `npm start`) in the escheduler folder"
      : `escheduler: cannot load the CLI: ${error instanceof Error ? error.message.split("\n")[0] : error}`,
  );
  exitSoon(2);
}

if (cli) {
  cli.main(process.argv).then(exitSoon, (error) => {
    console.error(`escheduler: ${error instanceof Error ? error.message.split("\n")[0] : String(error)}`);
    exitSoon(1);
  });
}
