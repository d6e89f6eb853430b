// The search box and the operator actions (sent with the bearer token the operator typed).
import { $, ago, el, setText } from "./dom.js";

/**
 * Tasks whose id contains `query`, where each runs (a crashed worker's held task as held); the task
 * actions per row when the snapshot says admin actions are served.
 */
export async function search(query, snapshot) {
  const admin = snapshot?.admin ?? false;
  const holds = new Map(
    (snapshot?.workers ?? []).filter((w) => !w.registered && w.held).map((w) => [w.name, w.held]),
  );
  const target = $("search-result");
  if (!query) return target.replaceChildren();
  const response = await fetch(`/console/search?q=${encodeURIComponent(query)}`);
  const result = await response.json();
  if (!response.ok) return target.replaceChildren(el("p", { class: "bad" }, result.error));
  const rows = result.matches.map((m) =>
    el(
      "tr",
      { "data-task": m.id },
      el("td", {}, m.id),
      el("td", {}, m.registered ? m.worker : `${m.worker} (gone)`),
      el(
        "td",
        { class: m.status?.state === "running" ? "good" : "warn" },
        m.status?.state ??
          (holds.has(m.worker) ? `held for ${m.worker} until ${holds.get(m.worker).until}` : "unstarted"),
      ),
      el("td", {}, m.status?.since ? ago(m.status.since) : "–"),
      el("td", { class: "error" }, m.status?.error ?? ""),
      admin ? el("td", {}, taskButtons(m.id, ["restart", "move", "pin", "unpin"])) : undefined,
    ),
  );
  const moves = (result.moves ?? []).map((move) =>
    el(
      "li",
      {},
      `${ago(move.at)}: ${move.id} ${move.from ?? "(new)"} → ${move.to ?? "(removed)"}${move.reasons?.length ? ` (${move.reasons.join("; ")})` : ""}`,
    ),
  );
  target.replaceChildren(
    ...[
      el(
        "p",
        { class: "muted" },
        result.total === 0
          ? `no task matches "${query}"`
          : `${result.total} match${result.total === 1 ? "" : "es"}${result.total > result.matches.length ? `, first ${result.matches.length} shown` : ""}`,
      ),
      rows.length
        ? el(
            "table",
            {},
            el(
              "thead",
              {},
              el(
                "tr",
                {},
                ["task", "worker", "state", "since", "error", ...(admin ? ["actions"] : [])].map((h) =>
                  el("th", {}, h),
                ),
              ),
            ),
            el("tbody", {}, rows),
          )
        : undefined,
      moves.length
        ? el("div", {}, el("h2", {}, "Recent moves"), el("ul", { id: "task-moves" }, moves))
        : undefined,
    ].filter(Boolean),
  );
}

/** The actions that move or pin a task take their worker from the "to worker" choice. */
const TARGETED = new Set(["move", "pin"]);

/** Buttons running task actions on `task` (move and pin to the worker chosen in the admin form). */
export function taskButtons(task, actions) {
  return actions.map((action) =>
    el(
      "button",
      {
        "data-action": action,
        "data-task": task,
        onclick: () =>
          act(action, { task, worker: TARGETED.has(action) ? $("admin-target").value : undefined }),
      },
      action,
    ),
  );
}

/** Runs an operator action: `target` names the worker and/or the task it is about. */
export async function act(action, target = {}) {
  const token = $("admin-token").value.trim();
  sessionStorage.setItem("escheduler-admin-token", token);
  const { worker, task } = target;
  const body = {
    worker: worker || undefined,
    task: task || undefined,
    reason: $("admin-reason").value.trim() || undefined,
    allowRemoval: $("admin-allow-removal").checked,
  };
  const what = [action, body.task, body.worker && (body.task ? `→ ${body.worker}` : body.worker)]
    .filter(Boolean)
    .join(" ");
  setText("admin-result", `${what}…`, "muted");
  try {
    const response = await fetch(`/console/actions/${action}`, {
      method: "POST",
      headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });
    const answer = await response.json();
    // The leader's answer to a schedule, restart or move: a refusal is not "done".
    const declined = answer.state === "refused" || answer.state === "failed";
    const text = !response.ok
      ? `${what} refused (HTTP ${response.status}): ${answer.error}`
      : declined
        ? `${what} ${answer.state}: ${answer.reason ?? "no reason given"}`
        : `${what}: done ${JSON.stringify(answer)}`;
    setText("admin-result", text, response.ok && !declined ? "good" : "bad");
  } catch (error) {
    setText("admin-result", `${what} failed: ${error.message}`, "bad");
  }
}
