#!/usr/bin/env node
import { main } from "../dist/cli/main.js";

// Once main has settled, nothing should keep the process alive; if something still does (a leaked
// socket or timer), exit anyway rather than hang a rollout.
function exitSoon(code) {
  process.exitCode = code;
  setTimeout(() => process.exit(code), 3_000).unref();
}

main(process.argv).then(exitSoon, (error) => {
  console.error(`escheduler: ${error instanceof Error ? error.message : String(error)}`);
  exitSoon(1);
});
