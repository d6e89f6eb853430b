/** Reading a node's Prometheus metrics in tests. */
import { waitFor } from "./context.js";

/**
 * Waits until the node at `http` (host:port) exports metrics matching every pattern; resolves with
 * them. A leader sets its schedule gauges once the schedule is applied, after its last write: the
 * workers may already run what it wrote, so a test that saw them converge waits for the gauges too.
 */
export async function waitForMetrics(
  http: string | undefined,
  patterns: readonly RegExp[],
  timeoutMs = 10_000,
): Promise<string> {
  if (!http) throw new Error("the node serves no HTTP (start it with an http address)");
  let text = "";
  await waitFor(
    `metrics of ${http} matching ${patterns.join(", ")}`,
    async () => {
      text = await (await fetch(`http://${http}/metrics`)).text();
      return patterns.every((pattern) => pattern.test(text));
    },
    timeoutMs,
  );
  return text;
}
