import { Gauge, type Registry } from "prom-client";
import type { Master } from "../master/index.js";

/** `escheduler_tasks_quarantined`: tasks the last applied schedule kept quarantined (the leader's figure). */
export function observeQuarantine(master: Master, registry: Registry): void {
  const quarantined = new Gauge({
    name: "escheduler_tasks_quarantined",
    help: "Tasks quarantined after failing on --quarantine-after workers, as the last applied schedule saw them (until `escheduler task reset` or a payload change)",
    registers: [registry],
  });
  quarantined.set(0);
  master.on("deposed", () => quarantined.set(0));
  master.on("scheduled", (figures) => quarantined.set(figures.unassignedReasons.quarantined ?? 0));
}
