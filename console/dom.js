// Small DOM helpers shared by the console's scripts.

export const $ = (id) => document.getElementById(id);

/** The server clock's offset from this browser's, so "ago" reads right on a skewed laptop. */
export const clock = { skew: 0 };

/** An element with attributes (`on…` become listeners) and children (strings become text). */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child !== undefined && child !== null) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function setText(id, text, className) {
  const node = $(id);
  node.textContent = text;
  if (className !== undefined) node.className = className;
}

export function setList(id, items) {
  $(id).replaceChildren(...items.map((item) => el("li", {}, item)));
}

/** "3s ago" from an RFC 3339 time, corrected by the server clock's offset. */
export function ago(time) {
  const at = Date.parse(time);
  if (Number.isNaN(at)) return time ?? "–";
  const seconds = Math.max(0, Math.round((Date.now() - clock.skew - at) / 1000));
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  return `${Math.floor(seconds / 3600)}h ${Math.floor((seconds % 3600) / 60)}m ago`;
}
