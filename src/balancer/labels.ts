import type { Labels, Selector, SelectorTerm, Spread } from "./types.js";

/**
 * Label syntax (Kubernetes'): a key is an optional DNS-subdomain prefix and "/" then a name of at most
 * 63 characters, alphanumeric at both ends with "-", "_" or "." inside; a value is empty or such a name.
 * Each check returns why the input is bad, or undefined: the CLI, the master and `plan` share them.
 */
const NAME = /^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$/;
const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export function labelKeyProblem(key: unknown): string | undefined {
  if (typeof key !== "string") return "a label key must be a string";
  const slash = key.lastIndexOf("/");
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined) {
    if (
      prefix.length === 0 ||
      prefix.length > 253 ||
      !prefix.split(".").every((part) => DNS_LABEL.test(part))
    ) {
      return `label key ${JSON.stringify(key)}: the prefix must be a DNS subdomain (lower case, at most 253 characters)`;
    }
  }
  if (!NAME.test(name)) {
    return `label key ${JSON.stringify(key)}: the name must be 1–63 characters, alphanumeric at both ends, with "-", "_" or "." inside`;
  }
  return undefined;
}

export function labelValueProblem(key: string, value: unknown): string | undefined {
  if (typeof value !== "string") return `label ${key}: the value must be a string`;
  if (value === "" || NAME.test(value)) return undefined;
  return `label ${key}=${value}: the value must be empty or 1–63 characters, alphanumeric at both ends, with "-", "_" or "." inside`;
}

export function labelsProblem(labels: unknown): string | undefined {
  if (labels === undefined) return undefined;
  if (labels === null || typeof labels !== "object" || Array.isArray(labels))
    return "labels must be an object";
  for (const [key, value] of Object.entries(labels)) {
    const problem = labelKeyProblem(key) ?? labelValueProblem(key, value);
    if (problem) return problem;
  }
  return undefined;
}

/** Parses "k=v" (one `--label` or one item of ESCHEDULER_LABELS), or says why it cannot. */
export function parseLabel(text: string): { key: string; value: string } | { problem: string } {
  const equals = text.indexOf("=");
  if (equals < 0) return { problem: `label ${JSON.stringify(text)}: expected key=value` };
  const key = text.slice(0, equals).trim();
  const value = text.slice(equals + 1).trim();
  const problem = labelKeyProblem(key) ?? labelValueProblem(key, value);
  return problem ? { problem } : { key, value };
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === "object" && !Array.isArray(value);

function valuesProblem(key: string, values: unknown, form: string): string | undefined {
  if (!Array.isArray(values) || values.length === 0)
    return `selector ${key}: ${form} must be a non-empty list of values`;
  for (const value of values) {
    const problem = labelValueProblem(key, value);
    if (problem) return `selector ${problem}`;
  }
  return undefined;
}

function termProblem(key: string, term: unknown): string | undefined {
  if (typeof term === "string") {
    const problem = labelValueProblem(key, term);
    return problem && `selector ${problem}`;
  }
  if (Array.isArray(term)) return valuesProblem(key, term, "a one-of list");
  if (isObject(term)) {
    const fields = Object.keys(term);
    if (fields.length === 1 && fields[0] === "notIn") return valuesProblem(key, term.notIn, "notIn");
    if (fields.length === 1 && fields[0] === "exists") {
      return typeof term.exists === "boolean" ? undefined : `selector ${key}: exists must be true or false`;
    }
  }
  return `selector ${key}: expected a value, a list of values, {notIn: [...]} or {exists: true|false}`;
}

export function selectorProblem(selector: unknown): string | undefined {
  if (selector === undefined) return undefined;
  if (!isObject(selector)) return "selector must be an object of label → value, list, {notIn} or {exists}";
  for (const [key, term] of Object.entries(selector)) {
    const problem = labelKeyProblem(key) ?? termProblem(key, term);
    if (problem) return problem.startsWith("label key") ? `selector ${problem}` : problem;
  }
  return undefined;
}

export function spreadProblem(spread: unknown): string | undefined {
  if (spread === undefined) return undefined;
  if (!isObject(spread)) return "spread must be an object {label, maxSkew?, hard?}";
  for (const field of Object.keys(spread)) {
    if (field !== "label" && field !== "maxSkew" && field !== "hard")
      return `spread: unknown field ${JSON.stringify(field)}`;
  }
  const keyProblem = labelKeyProblem(spread.label);
  if (keyProblem) return `spread ${keyProblem}`;
  const { maxSkew, hard } = spread;
  if (maxSkew !== undefined && (typeof maxSkew !== "number" || !Number.isInteger(maxSkew) || maxSkew < 1)) {
    return `spread maxSkew must be an integer ≥ 1, got ${JSON.stringify(maxSkew)}`;
  }
  if (hard !== undefined && typeof hard !== "boolean") return "spread hard must be true or false";
  return undefined;
}

export function antiKeyProblem(antiKey: unknown): string | undefined {
  if (antiKey === undefined) return undefined;
  return typeof antiKey === "string" && antiKey.length > 0 ? undefined : "antiKey must be a non-empty string";
}

/** Whether `labels` (null prototype or plain) satisfies every term of `selector`. */
export function matches(selector: Selector, labels: Labels | undefined): boolean {
  for (const key in selector) {
    const term: SelectorTerm = selector[key];
    const value = labels !== undefined && Object.hasOwn(labels, key) ? labels[key] : undefined;
    if (typeof term === "string") {
      if (value !== term) return false;
    } else if (Array.isArray(term)) {
      if (value === undefined || !term.includes(value)) return false;
    } else if ("notIn" in term) {
      if (value !== undefined && term.notIn.includes(value)) return false;
    } else if ((value !== undefined) !== (term as { exists: boolean }).exists) return false;
  }
  return true;
}

/** A selector as people write it: `zone=eu-1a`, `zone in (a,b)`, `zone notin (c)`, `gpu`, `!gpu`. */
export function formatSelector(selector: Selector): string {
  return Object.keys(selector)
    .sort()
    .map((key) => {
      const term: SelectorTerm = selector[key];
      if (typeof term === "string") return `${key}=${term}`;
      if (Array.isArray(term)) return `${key} in (${term.join(",")})`;
      if ("notIn" in term) return `${key} notin (${term.notIn.join(",")})`;
      return (term as { exists: boolean }).exists ? key : `!${key}`;
    })
    .join(", ");
}

/** The canonical form of a spread (defaults filled in), for comparing the tasks of a group. */
export function spreadSignature(spread: Spread): string {
  return `${spread.label}\u0000${spread.maxSkew ?? 1}\u0000${spread.hard === true}`;
}
