/**
 * Text read from etcd shown on a terminal: a record written by hand may hold control characters
 * (ESC sequences that clear the screen, retitle the window or recolour what follows; NUL, BEL, a
 * newline that forges a line). Human output shows each as an escape; --json output is JSON already.
 */

/** C0 controls (newline and tab too), DEL, C1 controls, and the Unicode bidirectional overrides and isolates. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/** `text` with every control character shown as `\xNN` (`\uNNNN` above 0xff). */
export function printable(text: string): string {
  return text.replace(CONTROL, (char) => {
    const code = char.charCodeAt(0);
    return code <= 0xff
      ? `\\x${code.toString(16).padStart(2, "0")}`
      : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

/** `value` with every string in it made printable (object keys too), for a report rendered as text. */
export function printableDeep<T>(value: T): T {
  return deep(value) as T;
}

function deep(value: unknown): unknown {
  if (typeof value === "string") return printable(value);
  if (Array.isArray(value)) return value.map(deep);
  if (value === null || typeof value !== "object") return value;
  const prototype = Object.getPrototypeOf(value) as unknown;
  if (prototype !== Object.prototype && prototype !== null) return value;
  return Object.fromEntries(Object.entries(value).map(([key, inner]) => [printable(key), deep(inner)]));
}
