// Administration, the users (GET /api/v1/admin/users?q=&cursor=&limit=):
// oldest first, searched by name, a page at a time ("More users"). A name
// opens the user (/admin/users/{id}).
import { element as el } from "../dom.js";
import { alertLine, busy, consoleLink, count, explain, heading, query, timeElement } from "./page-kit.js";

const PAGE = 50;

export function show(host, { api, navigate }) {
  let alive = true;
  let cursor = null;
  let generation = 0;
  const search = el("input", {
    type: "search", id: "admin-user-q", name: "q", maxlength: "64", autocomplete: "off", spellcheck: "false",
  });
  const find = el("button", { type: "submit", text: "Search" });
  const form = el("form", { role: "search", className: "inline-form", "aria-label": "Users" },
    el("label", { for: search.id, text: "Search users" }), search, find);
  const status = el("p", { className: "hint", role: "status" });
  const error = alertLine();
  const body = el("tbody");
  const table = el("table", { className: "data-table users-table", hidden: true },
    el("caption", { className: "visually-hidden", text: "Users, oldest account first" }),
    el("thead", {}, el("tr", {}, ["Username", "Role", "Status", "Created"].map((h) => el("th", { scope: "col", text: h })))),
    body);
  const more = el("button", { type: "button", className: "more", text: "More users", hidden: true });

  function row(user) {
    const path = `/admin/users/${encodeURIComponent(user.id)}`;
    return el("tr", { "data-user-id": user.id, "data-username": user.username },
      el("th", { scope: "row", "data-label": "Username" }, consoleLink(navigate, path, user.username)),
      el("td", { "data-label": "Role", text: user.role }),
      el("td", { "data-label": "Status", className: user.disabled ? "status-disabled" : "", text: user.disabled ? "Disabled" : "Active" }),
      el("td", { "data-label": "Created" }, timeElement(user.created_at)));
  }

  async function load(reset) {
    const mine = ++generation;
    error.clear();
    if (reset) cursor = null;
    const q = search.value.trim();
    status.textContent = "Loading…";
    try {
      const page = await busy(reset ? find : more, () =>
        api.get(`/api/v1/admin/users${query({ q, cursor, limit: PAGE })}`));
      if (!alive || mine !== generation) return;
      const items = Array.isArray(page && page.items) ? page.items : [];
      if (reset) body.replaceChildren();
      body.append(...items.map(row));
      cursor = (page && page.next_cursor) || null;
      more.hidden = !cursor;
      table.hidden = !body.children.length;
      const n = body.children.length;
      status.textContent = n
        ? `${count(n)} user${n === 1 ? "" : "s"}${q ? ` matching “${q}”` : ""}${cursor ? " (more below)" : ""}.`
        : q ? `No user matches “${q}”.` : "No users.";
    } catch (failure) {
      if (!alive || mine !== generation) return;
      status.textContent = "";
      error.show(`The users could not be read: ${explain(failure)}`);
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load(true);
  });
  more.addEventListener("click", () => {
    const first = body.children.length;
    load(false).then(() => body.children[first]?.querySelector("a")?.focus());
  });

  const part = el("section", { className: "panel", "aria-labelledby": "admin-users-title" },
    heading(2, "admin-users-title", "Users"),
    form, status, error.node, el("div", { className: "table-scroll" }, table), more);
  host.append(part);
  document.title = "Administration · Confab";
  load(true);
  return () => {
    alive = false;
    part.remove();
  };
}
