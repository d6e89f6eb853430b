/** `escheduler probe [--worker NAME]`: a readiness check for scripts and Kubernetes exec probes. */
import { clusterReadiness, readClusterView, workerReadiness } from "../readiness/index.js";
import { assertValidName, createEtcdClient, keyLayout, stderrLogger } from "../node/index.js";
import { parseConfig, sharedConfigSchema } from "./config.js";
import { withinDialTimeout } from "./connect.js";
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, reportError } from "./errors.js";
import { printable } from "./printable.js";

/** The probe's own default: fast enough for a Kubernetes probe with `timeoutSeconds: 2`. */
const PROBE_DIAL_TIMEOUT = "700ms";

/** Exit 0 ready, 1 not ready (reasons on stdout, one per line), 2 cannot tell (any failure to decide). */
export async function runProbe(options: Record<string, unknown>): Promise<number> {
  try {
    const config = parseConfig(sharedConfigSchema, {
      ...options,
      dialTimeout: options.dialTimeout ?? PROBE_DIAL_TIMEOUT,
    });
    const worker = options.worker as string | undefined;
    if (worker !== undefined) assertValidName("worker name", worker);
    const client = createEtcdClient(config);
    try {
      const scope = worker === undefined ? undefined : { worker };
      const logger = stderrLogger(config.logLevel);
      const view = await withinDialTimeout(
        readClusterView(client, keyLayout(config.root), scope, logger),
        config,
      );
      const verdict = worker === undefined ? clusterReadiness(view) : workerReadiness(worker, view);
      if (verdict.ready) return EXIT_OK;
      process.stdout.write(`${verdict.reasons.map(printable).join("\n")}\n`);
      return EXIT_FAILURE;
    } finally {
      client.close();
    }
  } catch (error) {
    reportError(error, { debug: options.logLevel === "debug" || options.logLevel === "trace" });
    return EXIT_USAGE;
  }
}
