// Tasks the operator acts on: the ones placed nowhere (quarantined among them), the pins, the
// worker choice that move and pin send a task to; and who did what lately (the audit trail).
import { $, ago, el, setList, setText } from "./dom.js";
import { taskButtons } from "./tools.js";

/** Unassigned reasons a `task reset` clears: the task's failure record is what keeps it out. */
const RESETTABLE = new Set(["quarantined", "failed"]);

/** The registered workers as choices for move and pin (the current choice kept while it is there). */
export function renderTargets(s) {
  const select = $("admin-target");
  const chosen = select.value;
  const names = s.workers.filter((w) => w.registered).map((w) => w.name);
  select.replaceChildren(...names.map((name) => el("option", { value: name }, name)));
  if (names.includes(chosen)) select.value = chosen;
}

/** The last plan's unassigned tasks, quarantined ones first, each with why (and reset, as admin). */
export function renderUnassigned(s) {
  const listed = s.plan?.unassignedTasks ?? [];
  const total = Object.values(s.plan?.unassignedReasons ?? {}).reduce((sum, n) => sum + n, 0);
  setText(
    "unassigned-note",
    total === 0
      ? "every task is placed"
      : total > listed.length
        ? `showing ${listed.length} of ${total}`
        : "",
  );
  const rows = [...listed].sort(
    (a, b) => Number(b.kind === "quarantined") - Number(a.kind === "quarantined"),
  );
  $("unassigned").hidden = rows.length === 0;
  $("unassigned").tHead.replaceChildren(
    el(
      "tr",
      {},
      ["task", "state", "why"].map((h) => el("th", {}, h)),
      s.admin ? el("th", {}, "actions") : undefined,
    ),
  );
  $("unassigned").tBodies[0].replaceChildren(
    ...rows.map((t) =>
      el(
        "tr",
        { "data-task": t.id },
        el("td", {}, t.id),
        el("td", { class: "bad" }, t.kind === "quarantined" ? "quarantined" : `unassigned (${t.kind})`),
        el("td", { class: "error" }, t.text),
        s.admin ? el("td", {}, RESETTABLE.has(t.kind) ? taskButtons(t.id, ["reset"]) : "") : undefined,
      ),
    ),
  );
}

/** The operator's pins: where each task is pinned, by whom and why, whether it holds (and unpin, as admin). */
export function renderPins(s) {
  const pins = s.pins ?? [];
  $("pins-section").hidden = pins.length === 0;
  $("pins").tHead.replaceChildren(
    el(
      "tr",
      {},
      ["task", "pinned to", "by", "state"].map((h) => el("th", {}, h)),
      s.admin ? el("th", {}, "actions") : undefined,
    ),
  );
  $("pins").tBodies[0].replaceChildren(
    ...pins.map((pin) =>
      el(
        "tr",
        { "data-task": pin.task },
        el("td", {}, pin.task),
        el("td", {}, pin.worker),
        el(
          "td",
          {},
          `${[pin.by, pin.reason].filter(Boolean).join(": ") || "–"}${pin.at ? ` (${ago(pin.at)})` : ""}`,
        ),
        el(
          "td",
          { class: pin.holds ? "good" : "warn" },
          pin.holds ? "holds" : pin.ignored ? `ignored: ${pin.ignored}` : "not there yet",
        ),
        s.admin ? el("td", {}, taskButtons(pin.task, ["unpin"])) : undefined,
      ),
    ),
  );
}

/** The newest operator actions, newest first: "3s ago: task move t1 → w2 by alice@ops: hot host". */
export function renderActions(s) {
  const actions = s.actions ?? [];
  setText("actions-note", actions.length ? "" : "none recorded yet");
  setList(
    "actions",
    [...actions].reverse().map((a) => {
      const subject = [a.task, a.worker, a.to && `→ ${a.to}`].filter(Boolean).join(" ");
      return `${ago(a.at)}: ${a.action}${subject ? ` ${subject}` : ""} by ${a.by}${a.reason ? `: ${a.reason}` : ""}`;
    }),
  );
}

/** Tasks held for crashed workers (`--reassign-delay`) and quarantined tasks, counted for the totals. */
export function lifecycleTotals(s) {
  const held = s.workers.reduce((sum, w) => sum + (!w.registered && w.held ? w.tasks : 0), 0);
  return { held, quarantined: s.plan?.unassignedReasons?.quarantined ?? 0 };
}
