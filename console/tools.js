// The search box and the operator actions (sent with the bearer token the operator typed).
import { $, ago, el, setText } from "./dom.js";

export async function search(query) {
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
      el("td", { class: m.status?.state === "running" ? "good" : "warn" }, m.status?.state ?? "unstarted"),
      el("td", {}, m.status?.since ? ago(m.status.since) : "–"),
      el("td", { class: "error" }, m.status?.error ?? ""),
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
                ["task", "worker", "state", "since", "error"].map((h) => el("th", {}, h)),
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

export async function act(action, worker) {
  const token = $("admin-token").value.trim();
  sessionStorage.setItem("escheduler-admin-token", token);
  const body = {
    worker,
    reason: $("admin-reason").value.trim() || undefined,
    allowRemoval: $("admin-allow-removal").checked,
  };
  setText("admin-result", `${action}${worker ? ` ${worker}` : ""}…`, "muted");
  try {
    const response = await fetch(`/console/actions/${action}`, {
      method: "POST",
      headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });
    const answer = await response.json();
    const text = response.ok
      ? `${action}${worker ? ` ${worker}` : ""}: done ${JSON.stringify(answer)}`
      : `${action} refused (HTTP ${response.status}): ${answer.error}`;
    setText("admin-result", text, response.ok ? "good" : "bad");
  } catch (error) {
    setText("admin-result", `${action} failed: ${error.message}`, "bad");
  }
}
