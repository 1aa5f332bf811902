// Administration, one user (GET /api/v1/admin/users/{id}): her account,
// live sessions, API keys, usage this month by model and budgets, with what
// an admin can do to them (admin-user-actions.js). Route:
// /admin/users/{user_id}.
import { element as el } from "../dom.js";
import { accountActions, budgetPanel } from "./admin-user-actions.js";
import { alertLine, consoleLink, count, explain, heading, money, timeElement, when } from "./page-kit.js";

function facts(detail) {
  const user = detail.user;
  const rows = [
    ["Username", user.username],
    ["User id", user.id],
    ["Role", user.role],
    ["Status", user.disabled ? `Disabled since ${when(user.disabled_at)}` : "Active"],
    ["Created", timeElement(user.created_at)],
    ["Live sessions", count(detail.sessions)],
  ];
  return rows.map(([term, value]) => el("div", {}, el("dt", { text: term }), el("dd", { "data-fact": term }, value)));
}

function keysTable(keys) {
  if (!Array.isArray(keys) || !keys.length) return el("p", { className: "hint", text: "No API keys." });
  return el("div", { className: "table-scroll" }, el("table", { className: "data-table" },
    el("caption", { className: "visually-hidden", text: "Her API keys" }),
    el("thead", {}, el("tr", {}, ["Name", "Key", "Scopes", "Created", "Last used", "Expires"].map((h) => el("th", { scope: "col", text: h })))),
    el("tbody", {}, keys.map((key) => el("tr", { "data-key-id": key.id },
      el("th", { scope: "row", "data-label": "Name", text: key.name }),
      el("td", { "data-label": "Key" }, el("code", { text: `${key.prefix}…` })),
      el("td", { "data-label": "Scopes", text: (key.scopes || []).join(", ") }),
      el("td", { "data-label": "Created" }, timeElement(key.created_at)),
      el("td", { "data-label": "Last used" }, timeElement(key.last_used_at, "Never")),
      el("td", { "data-label": "Expires" }, timeElement(key.expires_at, "Never")))))));
}

function usageTable(usage) {
  if (!usage) return el("p", { className: "hint", text: "Her usage cannot be read right now (the LLM proxy did not answer)." });
  const items = Array.isArray(usage.items) ? usage.items : [];
  if (!items.length) return el("p", { className: "hint", text: "No LLM calls this month." });
  const currency = usage.currency || "USD";
  const line = (label, t) => el("tr", {},
    el("th", { scope: "row", "data-label": "Model", text: label }),
    el("td", { "data-label": "Calls", text: count(t.calls) }),
    el("td", { "data-label": "Tokens", text: count((Number(t.input_tokens) || 0) + (Number(t.output_tokens) || 0)) }),
    el("td", { "data-label": `Cost (${currency})`, text: money(t.cost, currency) }));
  return el("div", { className: "table-scroll" }, el("table", { className: "data-table" },
    el("caption", { className: "visually-hidden", text: "Her LLM use this month, by model" }),
    el("thead", {}, el("tr", {}, ["Model", "Calls", "Tokens", `Cost (${currency})`].map((h) => el("th", { scope: "col", text: h })))),
    el("tbody", {}, items.map((item) => line(item.key ?? "No model", item))),
    usage.total ? el("tfoot", {}, line("Total", usage.total)) : null));
}

export function show(host, { api, navigate, userId, say }) {
  let alive = true;
  const path = `/api/v1/admin/users/${encodeURIComponent(userId)}`;
  const title = heading(2, "admin-user-title", "User");
  const status = el("p", { className: "hint", role: "status", text: "Loading…" });
  const error = alertLine();
  const content = el("div", { className: "user-detail" });
  const part = el("section", { className: "panel", "aria-labelledby": "admin-user-title" },
    consoleLink(navigate, "/admin", "← All users", { className: "back-link" }),
    title, status, error.node, content);
  host.append(part);

  const fetchDetail = () => api.get(path);

  function render(detail) {
    const user = detail.user;
    title.textContent = user.username;
    document.title = `${user.username} · Administration · Confab`;
    const factList = el("dl", { className: "facts" }, facts(detail));
    const keys = el("section", { className: "subpanel", "aria-labelledby": "admin-user-keys" },
      el("h3", { id: "admin-user-keys", text: "API keys" }), keysTable(detail.api_keys));
    const usage = el("section", { className: "subpanel", "aria-labelledby": "admin-user-usage" },
      el("h3", { id: "admin-user-usage", text: "Usage this month" }), el("div", {}, usageTable(detail.usage_this_month)));
    content.replaceChildren(
      factList,
      accountActions({
        api, user, say,
        changed(next) {
          detail.user = next;
          factList.replaceChildren(...facts(detail));
        },
        deleted() {
          navigate("/admin");
        },
      }),
      budgetPanel({
        api, user, say, budgets: detail.budgets,
        async refresh() {
          const again = await fetchDetail();
          if (alive) usage.lastElementChild.replaceChildren(usageTable(again.usage_this_month));
          return again.budgets;
        },
      }),
      keys,
      usage);
  }

  fetchDetail()
    .then((detail) => {
      if (!alive) return;
      status.textContent = "";
      render(detail);
    })
    .catch((failure) => {
      if (!alive) return;
      status.textContent = "";
      error.show(failure.status === 404 ? "There is no such user (she may have been deleted)." : explain(failure));
    });

  return () => {
    alive = false;
    part.remove();
  };
}
