// Administration, the audit trail (GET /api/v1/admin/audit): a table
// filtered by day range, actor and action, oldest first as the API pages
// it ("More events"), and the same filter as a JSON-lines download
// (GET /api/v1/admin/audit/export: a plain link; the console's HttpOnly
// access cookie signs the GET in, and a GET needs no CSRF header).
//
// Days are UTC days and both ends are included (the API's `to` is
// exclusive: the day after is sent). By default the last 7 days.
import { element as el } from "../dom.js";
import {
  addDays, alertLine, busy, consoleLink, count, explain, field, heading, query, timeElement, todayUtc,
} from "./page-kit.js";

const PAGE = 100;
const DEFAULT_DAYS = 7;

/** The trail's action names (crate::audit::Action in the gateway). */
const ACTIONS = [
  "login.succeeded", "login.failed", "api_key.created", "api_key.revoked", "password.changed",
  "password.reset", "user.role_changed", "user.disabled", "user.enabled", "user.deleted",
  "budget.changed", "signing_key.rotated", "admin.all_users_read",
];

function detailText(detail) {
  if (detail === null || detail === undefined) return "";
  if (typeof detail === "object" && !Array.isArray(detail) && !Object.keys(detail).length) return "";
  return JSON.stringify(detail);
}

export function show(host, { api, navigate }) {
  let alive = true;
  let cursor = null;
  let generation = 0;
  const today = todayUtc();
  const from = el("input", { type: "date", id: "audit-from", name: "from", max: today });
  const to = el("input", { type: "date", id: "audit-to", name: "to", max: today });
  from.value = addDays(today, 1 - DEFAULT_DAYS);
  to.value = today;
  const actor = el("input", {
    id: "audit-actor", name: "actor", maxlength: "64", autocomplete: "off", spellcheck: "false", placeholder: "username or user id",
  });
  const action = el("select", { id: "audit-action", name: "action" },
    el("option", { value: "", text: "Any action" }),
    ACTIONS.map((name) => el("option", { value: name, text: name })));
  const apply = el("button", { type: "submit", className: "primary", text: "Filter" });
  const download = el("a", { className: "button-link", download: "audit.jsonl", text: "Download JSON lines" });
  const form = el("form", { className: "filters", novalidate: true, "aria-label": "Filter the trail" },
    field("From", from), field("To", to), field("Actor", actor), field("Action", action),
    el("div", { className: "actions" }, apply, download));
  const status = el("p", { className: "hint", role: "status" });
  const error = alertLine();
  const body = el("tbody");
  const table = el("table", { className: "data-table audit-table", hidden: true },
    el("caption", { className: "visually-hidden", text: "Audit events, oldest first" }),
    el("thead", {}, el("tr", {}, ["Time", "Actor", "Action", "Target", "IP", "Detail"].map((h) => el("th", { scope: "col", text: h })))),
    body);
  const more = el("button", { type: "button", className: "more", text: "More events", hidden: true });

  /** The filter as the API takes it; null (and an error shown) when a day is wrong. */
  function filter() {
    if (from.value && to.value && from.value > to.value) {
      error.show("The first day must not be after the last.");
      return null;
    }
    return {
      from: from.value || undefined,
      to: to.value ? addDays(to.value, 1) : undefined,
      actor: actor.value.trim() || undefined,
      action: action.value || undefined,
    };
  }

  function target(id) {
    if (!id) return "—";
    if (id.startsWith("usr-")) return consoleLink(navigate, `/admin/users/${encodeURIComponent(id)}`, id);
    return el("code", { text: id });
  }

  function row(event) {
    const who = event.actor_name || event.actor_id || "—";
    return el("tr", { "data-event-id": event.id, "data-action": event.action },
      el("td", { "data-label": "Time" }, timeElement(event.at)),
      el("td", { "data-label": "Actor", text: who }),
      el("th", { scope: "row", "data-label": "Action", text: event.action }),
      el("td", { "data-label": "Target" }, target(event.target_id)),
      el("td", { "data-label": "IP", text: event.ip || "—" }),
      el("td", { "data-label": "Detail", className: "detail" }, el("code", { text: detailText(event.detail) })));
  }

  async function load(reset) {
    error.clear();
    const wanted = filter();
    if (!wanted) return;
    const mine = ++generation;
    if (reset) cursor = null;
    download.href = `/api/v1/admin/audit/export${query(wanted)}`;
    status.textContent = "Loading…";
    try {
      const page = await busy(reset ? apply : more, () =>
        api.get(`/api/v1/admin/audit${query({ ...wanted, cursor, limit: PAGE })}`));
      if (!alive || mine !== generation) return;
      const items = Array.isArray(page && page.items) ? page.items : [];
      if (reset) body.replaceChildren();
      body.append(...items.map(row));
      cursor = (page && page.next_cursor) || null;
      more.hidden = !cursor;
      const n = body.children.length;
      table.hidden = !n;
      status.textContent = n
        ? `${count(n)} event${n === 1 ? "" : "s"}, oldest first${cursor ? " (more below)" : ""}.`
        : "No event matches this filter.";
    } catch (failure) {
      if (!alive || mine !== generation) return;
      status.textContent = "";
      error.show(`The trail could not be read: ${explain(failure)}`);
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load(true);
  });
  more.addEventListener("click", () => {
    const first = body.children.length;
    load(false).then(() => {
      const next = body.children[first];
      if (next) {
        next.tabIndex = -1;
        next.focus();
      }
    });
  });

  const part = el("section", { className: "panel", "aria-labelledby": "admin-audit-title" },
    heading(2, "admin-audit-title", "Audit trail"),
    form, status, error.node, el("div", { className: "table-scroll" }, table), more);
  host.append(part);
  document.title = "Audit trail · Administration · Confab";
  load(true);
  return () => {
    alive = false;
    part.remove();
  };
}
