// What an admin can do to one user's account (admin-user.js shows them):
// disable or enable it and change its role (PATCH /api/v1/admin/users/{id}),
// reset its password (POST …/password), delete it after typing its name
// (DELETE …), and set its budget for a day or a month (PUT …/budget).
// The API's refusals are shown as it words them (409 own_account when an
// admin acts on her own account, 422 for values it does not take).
import { element as el } from "../dom.js";
import { typedConfirmDialog } from "./dialogs.js";
import { alertLine, busy, count, field, money, when } from "./page-kit.js";

/** The account: status, role, password and deletion. */
export function accountActions({ api, user, say, changed, deleted }) {
  let current = user;
  const path = `/api/v1/admin/users/${encodeURIComponent(user.id)}`;
  const error = alertLine();

  const toggle = el("button", { type: "button" });
  const paintToggle = () => {
    toggle.textContent = current.disabled ? "Enable account" : "Disable account";
    toggle.className = current.disabled ? "" : "danger";
  };
  paintToggle();

  const role = el("select", { id: "admin-role", name: "role" },
    ["user", "admin"].map((value) => el("option", { value, text: value })));
  role.value = current.role;
  const changeRole = el("button", { type: "submit", text: "Change role" });
  const roleForm = el("form", { className: "inline-form", "aria-label": "Role change" },
    el("label", { for: role.id, text: "Role" }), role, changeRole);

  const password = el("input", {
    type: "password", id: "admin-password", name: "password", autocomplete: "new-password", minlength: "8",
    "aria-describedby": "admin-password-hint",
  });
  const reset = el("button", { type: "submit", text: "Reset password" });
  const passwordForm = el("form", { className: "inline-form", "aria-label": "Password reset", novalidate: true },
    el("label", { for: password.id, text: "New password" }), password, reset,
    el("p", { className: "hint", id: "admin-password-hint", text: "At least 8 characters. Her sessions end, and she signs in with the new password." }));

  const remove = el("button", { type: "button", className: "danger", text: "Delete user…" });

  async function patch(body, button, done) {
    error.clear();
    try {
      current = await busy(button, () => api.patch(path, body));
    } catch (failure) {
      error.show(failure);
      return;
    }
    changed(current);
    paintToggle();
    role.value = current.role;
    say(done(current));
  }

  toggle.addEventListener("click", () => patch({ disabled: !current.disabled }, toggle, (u) => (u.disabled
    ? `${u.username} is disabled: signed out everywhere, and refused at sign-in.`
    : `${u.username} is enabled and can sign in again.`)));
  roleForm.addEventListener("submit", (event) => {
    event.preventDefault();
    patch({ role: role.value }, changeRole, (u) => `${u.username} is now ${u.role === "admin" ? "an admin" : "a user"}.`);
  });
  passwordForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.clear();
    if (password.value.length < 8) {
      error.show("The new password needs at least 8 characters.");
      password.focus();
      return;
    }
    try {
      await busy(reset, () => api.post(`${path}/password`, { password: password.value }));
    } catch (failure) {
      error.show(failure);
      return;
    }
    password.value = "";
    say(`The password of ${current.username} is reset; her sessions have ended.`);
  });
  remove.addEventListener("click", async () => {
    error.clear();
    const sure = await typedConfirmDialog({
      title: `Delete ${current.username}?`,
      text: "Her account, API keys and sessions, her conversations and messages, and her LLM calls and traces are " +
        "deleted for good. This cannot be undone.",
      expected: current.username,
      label: `Type “${current.username}” to confirm`,
      confirm: "Delete user",
    });
    if (!sure) return;
    try {
      await busy(remove, () => api.del(path));
    } catch (failure) {
      error.show(failure);
      return;
    }
    say(`User ${current.username} deleted.`);
    deleted();
  });

  return el("section", { className: "subpanel", "aria-labelledby": "admin-account-title" },
    el("h3", { id: "admin-account-title", text: "Account" }),
    el("div", { className: "actions" }, toggle),
    roleForm,
    passwordForm,
    el("div", { className: "actions danger-zone" }, remove),
    error.node);
}

const PERIODS = [["day", "Day"], ["month", "Month"]];

function budgetRows(budgets) {
  const currency = (budgets && budgets.currency) || "USD";
  return PERIODS.map(([period, name]) => {
    const b = budgets && budgets[period];
    if (!b) return el("tr", {}, el("th", { scope: "row", text: name }), el("td", { colSpan: 5, text: "Unknown" }));
    const used = b.used || {};
    return el("tr", { "data-period": period },
      el("th", { scope: "row", "data-label": "Period", text: name }),
      el("td", { "data-label": "Token limit", text: b.tokens === null || b.tokens === undefined ? "No limit" : count(b.tokens) }),
      el("td", { "data-label": "Cost limit", text: b.cost === null || b.cost === undefined ? "No limit" : money(b.cost, currency) }),
      el("td", { "data-label": "Set by", text: b.source === "default" ? "Configuration (default)" : "An admin" }),
      el("td", { "data-label": "Used", text: `${count(used.tokens)} tokens, ${money(used.cost ?? null, currency)}` }),
      el("td", { "data-label": "Resets", text: when(b.resets_at) }));
  });
}

/** Parses a limit field: null when empty, else a number ≥ 0 (`integer`: whole), else undefined. */
function limit(input, integer) {
  const text = input.value.trim();
  if (!text) return null;
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0 || (integer && !Number.isInteger(value))) return undefined;
  return value;
}

/** The budget: the limits in force and a form to set a period's. */
export function budgetPanel({ api, user, say, budgets, refresh }) {
  const path = `/api/v1/admin/users/${encodeURIComponent(user.id)}/budget`;
  const error = alertLine();
  const body = el("tbody", {}, budgetRows(budgets));
  const table = el("table", { className: "data-table budget-table" },
    el("caption", { className: "visually-hidden", text: "Her budgets" }),
    el("thead", {}, el("tr", {}, ["Period", "Token limit", "Cost limit", "Set by", "Used", "Resets"].map((h) => el("th", { scope: "col", text: h })))),
    body);
  const period = el("select", { id: "budget-period", name: "period" }, PERIODS.map(([value, text]) => el("option", { value, text })));
  const tokens = el("input", {
    id: "budget-tokens", name: "tokens", type: "number", min: "0", step: "1", inputMode: "numeric", "aria-describedby": "budget-hint",
  });
  const cost = el("input", {
    id: "budget-cost", name: "cost", type: "number", min: "0", step: "any", inputMode: "decimal", "aria-describedby": "budget-hint",
  });
  const save = el("button", { type: "submit", text: "Set budget" });
  const form = el("form", { className: "budget-form", novalidate: true, "aria-label": "Set a budget" },
    field("Period", period),
    field("Token limit", tokens),
    field(`Cost limit (${(budgets && budgets.currency) || "USD"})`, cost),
    el("div", { className: "actions" }, save),
    el("p", { className: "hint", id: "budget-hint", text: "An empty limit is no limit of that kind. The period's budget replaces the configured default." }));

  const prefill = () => {
    const b = budgets && budgets[period.value];
    tokens.value = b && b.tokens !== null && b.tokens !== undefined ? String(b.tokens) : "";
    cost.value = b && b.cost !== null && b.cost !== undefined ? String(b.cost) : "";
  };
  prefill();
  period.addEventListener("change", prefill);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.clear();
    const t = limit(tokens, true);
    const c = limit(cost, false);
    if (t === undefined || c === undefined) {
      error.show(t === undefined ? "The token limit is a whole number of tokens, or empty." : "The cost limit is an amount, or empty.");
      (t === undefined ? tokens : cost).focus();
      return;
    }
    try {
      await busy(save, () => api.request("PUT", path, { period: period.value, tokens: t, cost: c }));
    } catch (failure) {
      error.show(failure);
      return;
    }
    say(`The ${period.value}'s budget of ${user.username} is set.`);
    try {
      budgets = await refresh();
      body.replaceChildren(...budgetRows(budgets));
    } catch {
      // The budget is stored; the table shows it at the next visit.
    }
  });

  return el("section", { className: "subpanel", "aria-labelledby": "admin-budget-title" },
    el("h3", { id: "admin-budget-title", text: "Budget" }),
    el("div", { className: "table-scroll" }, table),
    form,
    error.node);
}
