#!/usr/bin/env node
// The executable: runs the built CLI (dist/) and turns its result into the exit code.

// Once main has settled, nothing should keep the process alive; if something still does (a leaked
// socket or timer), exit anyway rather than hang a rollout. `probe` answers a caller that counts time
// (a Kubernetes exec probe's timeoutSeconds): once it has decided it exits at once, even while a read
// from an etcd that stopped answering is still open (its output is written synchronously by then).
const lingerMs = process.argv[2] === "probe" ? 0 : 3_000;
function exitSoon(code) {
  process.exitCode = code;
  setTimeout(() => process.exit(code), lingerMs).unref();
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
