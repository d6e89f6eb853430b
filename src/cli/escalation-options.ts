import type { Command } from "commander";
import ms from "ms";
import { DEFAULTS } from "../node/defaults.js";
import { addSetting } from "./options.js";

/** The master's failure escalation flags (each with its ESCHEDULER_* variable and config key). */
export function addEscalationOptions(master: Command): Command {
  addSetting(
    master,
    "--restart-limit <n>",
    `move a task after this many failures on one worker within --restart-window (default ${DEFAULTS.restartLimit}: restart there forever)`,
  );
  addSetting(
    master,
    "--restart-window <duration>",
    `the window --restart-limit counts failures in (default ${ms(DEFAULTS.restartWindowMs)})`,
  );
  addSetting(
    master,
    "--quarantine-after <m>",
    `quarantine a task once it reached --restart-limit on this many workers (default ${DEFAULTS.quarantineAfter}; 0: never)`,
  );
  addSetting(
    master,
    "--auto-cordon-after <k>",
    `cordon a worker (reason "auto: …") once this many distinct tasks reached --restart-limit there and run on other workers (default ${DEFAULTS.autoCordonAfter}: never)`,
  );
  return master;
}
