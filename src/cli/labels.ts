/** Worker labels as the command line takes them: `--label k=v` (repeatable), `ESCHEDULER_LABELS`, `labels` in a config file. */
import { Option } from "commander";
import { z } from "zod";
import { labelsProblem, parseLabel } from "../balancer/index.js";

/** `--label <key=value>`, repeatable, stored as the `labels` setting (so a config file says `labels`). */
class LabelOption extends Option {
  override attributeName(): string {
    return "labels";
  }
}

export function labelOption(): Option {
  return new LabelOption(
    "--label <key=value>",
    "a label task selectors and spreads match, e.g. zone=eu-1a (repeatable)",
  )
    .env("ESCHEDULER_LABELS")
    .argParser((value: string, previous: unknown) => [...(Array.isArray(previous) ? previous : []), value]);
}

/**
 * The labels setting: a list of `k=v` texts (flags; the variable's one text, comma-separated) or an
 * object (config file). A bad key or value is the setting's one-line error.
 */
export const labelsSetting = z.unknown().transform((value, ctx): Record<string, string> => {
  if (Array.isArray(value) || typeof value === "string") {
    const labels: Record<string, string> = {};
    const items = (Array.isArray(value) ? value : [value]).flatMap((item) => String(item).split(","));
    for (const item of items.map((text) => text.trim()).filter((text) => text.length > 0)) {
      const parsed = parseLabel(item);
      if ("problem" in parsed) {
        ctx.addIssue({ code: "custom", message: parsed.problem });
        return z.NEVER;
      }
      labels[parsed.key] = parsed.value;
    }
    return labels;
  }
  const problem = labelsProblem(value) ?? (value === null ? "labels must be an object" : undefined);
  if (problem) {
    ctx.addIssue({ code: "custom", message: problem });
    return z.NEVER;
  }
  return { ...(value as Record<string, string>) };
});
