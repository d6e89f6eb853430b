// The live console: one event stream of snapshots (rebuilt by the server once per etcd revision),
// rendered with plain DOM calls; every value from the cluster goes in as text, never as HTML.
import { drawBars, PALETTE } from "./charts.js";
import { $, ago, clock, el, setList, setText } from "./dom.js";
import { lifecycleTotals, renderActions, renderPins, renderTargets, renderUnassigned } from "./tasks.js";
import { act, search } from "./tools.js";

const PAGE_SIZE = 50;
const view = { snapshot: undefined, page: 0, filter: "", sort: "name", group: "" };

/** `zone=eu-1a,gpu=true` for a worker's labels ("" when it has none). */
const labelText = (w) =>
  Object.entries(w.labels ?? {})
    .map(([key, value]) => `${key}=${value}`)
    .join(",");

const groupName = (group) => (group === "" ? "(no group)" : group);
const colorOf = (snapshot, group) => PALETTE[snapshot.totals.groups.indexOf(group) % PALETTE.length];

function renderSummary(s) {
  setText("root", `root ${s.root}`);
  setText("revision", `revision ${s.revision}`);
  setText("leader", s.leader ?? "none", s.leader ? "good" : "bad");
  setText(
    "barrier",
    s.barrierLeft ? `passed ${ago(s.barrierLeft)}` : "not passed yet",
    s.barrierLeft ? "good" : "warn",
  );
  const paused = s.paused;
  setText(
    "paused",
    paused
      ? `PAUSED${paused.by ? ` by ${paused.by}` : ""}${paused.reason ? `: ${paused.reason}` : ""}${paused.at ? ` (${ago(paused.at)})` : ""}`
      : "running",
    paused ? "bad" : "good",
  );
  const refused = s.refused;
  setText(
    "guard",
    refused ? `REFUSED ${ago(refused.at)} by ${refused.leader}: ${refused.reason}` : "clear",
    refused ? "bad" : "good",
  );
  setText("ready", s.ready ? "READY" : "NOT READY", s.ready ? "good" : "bad");
  setList(
    "reasons",
    s.reasons.slice(0, 5).concat(s.reasons.length > 5 ? [`… ${s.reasons.length - 5} more`] : []),
  );
  const plan = s.plan;
  setText(
    "last-schedule",
    plan
      ? `${ago(plan.at)} by ${plan.leader} (term ${plan.epoch}): ${plan.tasks} tasks on ${plan.workers.length} workers, moved ${plan.moved}${unassignedText(plan)}`
      : "none yet",
  );
  const last = s.schedules.at(-1);
  setList(
    "last-reasons",
    last ? [`${last.outcome} ${ago(last.at)}: ${last.reasons.join("; ") || "no reason given"}`] : [],
  );
  setText("total-workers", String(s.totals.workers));
  setText("total-tasks", String(s.totals.tasks));
  setText("total-not-running", String(s.totals.notRunning), s.totals.notRunning ? "bad" : "");
  const { held, quarantined } = lifecycleTotals(s);
  setText("total-held", String(held), held ? "warn" : "");
  setText("total-quarantined", String(quarantined), quarantined ? "bad" : "");
  setText(
    "balance",
    s.totals.workers
      ? `min ${s.balance.min} · mean ${s.balance.mean.toFixed(1)} · max ${s.balance.max}`
      : "–",
  );
}

function renderCharts(s) {
  const workers = s.workers.filter((w) => w.registered);
  drawBars(
    $("balance-chart"),
    workers.map((w) => ({
      label: w.name,
      segments: s.totals.groups.map((g) => ({ value: w.groups[g] ?? 0, color: colorOf(s, g) })),
      text: `${w.name}: ${w.tasks} tasks (${s.totals.groups.map((g) => `${groupName(g)} ${w.groups[g] ?? 0}`).join(", ")})`,
    })),
    { line: workers.length ? s.balance.mean : undefined, empty: "no workers", describe: (bar) => bar.text },
  );
  $("balance-legend").replaceChildren(
    ...s.totals.groups.map((g) =>
      el("span", {}, el("i", { style: `background:${colorOf(s, g)}` }), groupName(g)),
    ),
  );
  drawBars(
    $("moves-chart"),
    s.schedules.map((mark) => ({
      label: new Date(mark.at).toLocaleTimeString(),
      segments: [{ value: mark.moved, color: mark.outcome === "refused" ? "#c23b30" : "#3b6fd4" }],
      text: `${new Date(mark.at).toLocaleString()} by ${mark.leader}: ${mark.outcome}, moved ${mark.moved}${mark.refusal ? ` (${mark.refusal})` : ""}; ${mark.reasons.join("; ")}`,
    })),
    { empty: "no schedule yet", describe: (bar) => bar.text },
  );
}

/** "; unassigned: selector 2 (no worker matches zone=eu-1c), capacity 1", or "". */
function unassignedText(plan) {
  const kinds = Object.entries(plan.unassignedReasons ?? {});
  if (kinds.length === 0) return "";
  const example = (kind) => plan.unassignedTasks?.find((t) => t.kind === kind)?.text;
  return `; unassigned: ${kinds.map(([kind, n]) => `${kind} ${n}${example(kind) && example(kind) !== kind ? ` (${example(kind)})` : ""}`).join(", ")}`;
}

function sortedWorkers(s) {
  const needle = view.filter.toLowerCase();
  const rows = s.workers.filter(
    (w) => w.name.toLowerCase().includes(needle) || labelText(w).toLowerCase().includes(needle),
  );
  const by = {
    name: (a, b) => a.name.localeCompare(b.name),
    tasks: (a, b) => b.tasks - a.tasks || a.name.localeCompare(b.name),
    notRunning: (a, b) => b.notRunning - a.notRunning || a.name.localeCompare(b.name),
  }[view.sort];
  // Grouped by a label: its values in order (workers without it last), the chosen sort within each.
  const value = (w) => w.labels?.[view.group] ?? "\uffff";
  return rows.sort((a, b) => (view.group ? value(a).localeCompare(value(b)) : 0) || by(a, b));
}

/** The label keys the fleet uses, as grouping choices (the current choice kept). */
function renderGroupChoices(s) {
  const keys = [...new Set(s.workers.flatMap((w) => Object.keys(w.labels ?? {})))].sort();
  const options = [el("option", { value: "" }, "no grouping")];
  for (const key of keys) options.push(el("option", { value: key }, `by label ${key}`));
  $("worker-group").replaceChildren(...options);
  $("worker-group").value = keys.includes(view.group) ? view.group : "";
}

function renderWorkers(s) {
  renderGroupChoices(s);
  const groups = s.totals.groups;
  const admin = s.admin;
  $("workers").tHead.replaceChildren(
    el(
      "tr",
      {},
      el("th", {}, "worker"),
      el("th", {}, "state"),
      el("th", { class: "num" }, "tasks"),
      groups.map((g) => el("th", { class: "num" }, groupName(g))),
      el("th", { class: "num" }, "capacity"),
      el("th", { class: "num" }, "not running"),
      el("th", {}, "in plan"),
      el("th", {}, "labels"),
      el("th", {}, "generation"),
      el("th", {}, "host"),
      el("th", {}, "up"),
      admin ? el("th", {}, "actions") : undefined,
    ),
  );
  const rows = sortedWorkers(s);
  const pages = Math.max(1, Math.ceil(rows.length / PAGE_SIZE));
  view.page = Math.min(view.page, pages - 1);
  const shown = rows.slice(view.page * PAGE_SIZE, (view.page + 1) * PAGE_SIZE);
  $("workers").tBodies[0].replaceChildren(
    ...shown.map((w) => {
      const state = w.registered ? (w.cordon ?? "active") : w.held ? `held until ${w.held.until}` : "gone";
      return el(
        "tr",
        { "data-worker": w.name, class: w.registered ? "" : w.held ? "gone held" : "gone" },
        el("td", {}, w.name),
        el(
          "td",
          {
            class: state === "active" ? "good" : "warn",
            title: [w.cordonBy, w.cordonReason].filter(Boolean).join(": "),
          },
          w.cordonBy ? `${state} by ${w.cordonBy}` : state,
        ),
        el("td", { class: "num" }, w.tasks),
        groups.map((g) => el("td", { class: "num" }, w.groups[g] ?? 0)),
        el("td", { class: "num" }, w.capacity ?? "∞"),
        el("td", { class: w.notRunning ? "num bad" : "num" }, w.notRunning),
        el("td", {}, w.inPlan ? "yes" : "no"),
        el("td", {}, labelText(w) || "–"),
        el("td", {}, w.generation ?? "–"),
        el("td", {}, w.host ? `${w.host}:${w.pid}` : "–"),
        el("td", {}, w.startedAt ? ago(w.startedAt).replace(" ago", "") : "–"),
        admin ? el("td", {}, workerButtons(w)) : undefined,
      );
    }),
  );
  const pager = [
    el("span", { class: "muted" }, `${rows.length} of ${s.workers.length} · page ${view.page + 1}/${pages} `),
  ];
  if (pages > 1) {
    pager.push(el("button", { onclick: () => turn(-1), disabled: view.page === 0 }, "‹ prev"));
    pager.push(el("button", { onclick: () => turn(1), disabled: view.page >= pages - 1 }, "next ›"));
  }
  $("worker-pager").replaceChildren(...pager);
}

/** Cordon, drain and uncordon for a registered worker; release for a crashed one whose tasks are held. */
function workerButtons(w) {
  const actions = w.registered ? ["cordon", "drain", "uncordon"] : w.held ? ["release"] : [];
  return actions.map((action) =>
    el(
      "button",
      { "data-action": action, "data-target": w.name, onclick: () => act(action, { worker: w.name }) },
      action,
    ),
  );
}

function turn(delta) {
  view.page += delta;
  renderWorkers(view.snapshot);
}

function renderNotRunning(s) {
  const more = s.totals.notRunning - s.notRunning.length;
  setText(
    "not-running-note",
    s.totals.notRunning === 0
      ? "every assigned task runs"
      : more > 0
        ? `showing ${s.notRunning.length} of ${s.totals.notRunning}`
        : "",
  );
  $("not-running").hidden = s.notRunning.length === 0;
  $("not-running").tBodies[0].replaceChildren(
    ...s.notRunning.map((t) =>
      el(
        "tr",
        {},
        el("td", {}, t.worker),
        el("td", {}, t.assigned ? t.id : `${t.id} (unassigned)`),
        el(
          "td",
          { class: t.state === "failed" ? "bad" : "warn" },
          t.state === "held" ? `held for ${t.worker} until ${t.until}` : t.state,
        ),
        el("td", {}, t.attempt ?? "–"),
        el("td", {}, t.since ? ago(t.since) : "–"),
        el("td", { class: "error" }, t.error ?? ""),
      ),
    ),
  );
}

function render(snapshot) {
  view.snapshot = snapshot;
  clock.skew = Date.now() - Date.parse(snapshot.builtAt);
  $("admin").hidden = !snapshot.admin;
  renderSummary(snapshot);
  renderCharts(snapshot);
  renderWorkers(snapshot);
  renderNotRunning(snapshot);
  renderUnassigned(snapshot);
  renderPins(snapshot);
  renderActions(snapshot);
  if (snapshot.admin) renderTargets(snapshot);
}

function connect() {
  const source = new EventSource("/console/events");
  source.addEventListener("snapshot", (event) => {
    setText("connection", "live", "badge live");
    render(JSON.parse(event.data));
  });
  source.addEventListener("problem", (event) =>
    setText("connection", `etcd: ${JSON.parse(event.data).error}`, "badge down"),
  );
  source.addEventListener("error", () => setText("connection", "reconnecting…", "badge down"));
}

let searchTimer;
$("search-form").addEventListener("submit", (event) => {
  event.preventDefault();
  void search($("search").value.trim(), view.snapshot);
});
$("search").addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => void search($("search").value.trim(), view.snapshot), 300);
});
$("worker-filter").addEventListener("input", (event) => {
  view.filter = event.target.value;
  view.page = 0;
  if (view.snapshot) renderWorkers(view.snapshot);
});
$("worker-group").addEventListener("change", (event) => {
  view.group = event.target.value;
  if (view.snapshot) renderWorkers(view.snapshot);
});
$("worker-sort").addEventListener("change", (event) => {
  view.sort = event.target.value;
  if (view.snapshot) renderWorkers(view.snapshot);
});
for (const button of document.querySelectorAll("#admin button[data-action]")) {
  button.addEventListener("click", () => act(button.dataset.action));
}
// The task row of the admin form: any task by its id (move and pin send it to the chosen worker).
for (const button of document.querySelectorAll("#admin button[data-task-action]")) {
  const action = button.dataset.taskAction;
  button.addEventListener("click", () =>
    act(action, {
      task: $("admin-task").value.trim(),
      worker: action === "move" || action === "pin" ? $("admin-target").value : undefined,
    }),
  );
}
for (const form of ["admin-form", "admin-task-form"]) {
  $(form).addEventListener("submit", (event) => event.preventDefault());
}
$("admin-token").value = sessionStorage.getItem("escheduler-admin-token") ?? "";
window.addEventListener("resize", () => view.snapshot && renderCharts(view.snapshot));
connect();
