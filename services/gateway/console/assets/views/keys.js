// API keys (issue 21): the signed-in person's personal keys
// (GET /api/v1/api-keys), a new one (POST, answered once with the key
// itself), and revoking one (DELETE, after a confirmation). Route: /keys.
//
// The new key is shown once, in a panel with a Copy button and a note that
// it will not be shown again. It lives only in that panel: dismissing the
// panel, creating another key, revoking it or leaving the page removes it
// from the DOM and from this module.
import { element as el } from "../dom.js";
import { confirmDialog } from "./dialogs.js";
import { alertLine, busy, explain, field, heading, liveRegion, timeElement, when } from "./page-kit.js";

/** The scopes a key may have, as the gateway names them (crate::api_keys). */
const SCOPES = [
  ["chat", "Conversations, turns, agents and the chat WebSockets"],
  ["llm", "The LLM endpoint (/api/v1/llm), traces and LLM calls"],
  ["read", "Reading anything (every GET), changing nothing"],
];

const DAY = 24 * 3600;
const LIFETIMES = [
  ["", "Never (until revoked)"],
  [String(7 * DAY), "In 7 days"],
  [String(30 * DAY), "In 30 days"],
  [String(90 * DAY), "In 90 days"],
  [String(365 * DAY), "In a year"],
];

export function mount(root, { api }) {
  let alive = true;
  const live = liveRegion();

  // --- a new key ---
  const name = el("input", { id: "key-name", name: "name", required: true, maxlength: "64", autocomplete: "off" });
  const scopes = SCOPES.map(([scope, about]) =>
    el("input", { type: "checkbox", id: `key-scope-${scope}`, name: "scopes", value: scope, "aria-describedby": `key-scope-${scope}-about` }));
  scopes[0].checked = true;
  const expires = el("select", { id: "key-expires", name: "expires" },
    LIFETIMES.map(([value, text]) => el("option", { value, text })));
  const create = el("button", { type: "submit", className: "primary", text: "Create key" });
  const formError = alertLine();
  const form = el("form", { className: "stack", novalidate: true, "aria-labelledby": "key-new-title" },
    el("h2", { id: "key-new-title", text: "New key" }),
    field("Name", name, "What the key is for, e.g. “laptop script” (1 to 64 characters)."),
    el("fieldset", { className: "scopes" },
      el("legend", { text: "Scopes" }),
      SCOPES.map(([scope, about], i) => el("div", { className: "check" },
        scopes[i],
        el("label", { for: scopes[i].id }, el("strong", { text: scope })),
        el("span", { className: "hint", id: `key-scope-${scope}-about`, text: about })))),
    field("Expires", expires),
    formError.node,
    el("div", { className: "actions" }, create));

  // --- the key just made, shown once ---
  const reveal = el("div", { className: "reveal-slot" });
  let shown = null; // {id, panel}

  function hideKey({ focus = false } = {}) {
    if (!shown) return;
    shown.panel.remove();
    shown = null;
    if (focus) listTitle.focus();
  }

  function showKey(created) {
    hideKey();
    const value = el("input", {
      id: "new-key-value", readonly: true, spellcheck: "false", autocomplete: "off", className: "key-value",
    });
    value.value = created.key;
    const copy = el("button", { type: "button", className: "primary", text: "Copy" });
    const copied = el("p", { className: "hint", role: "status" });
    const done = el("button", { type: "button", text: "Done, hide the key" });
    const title = heading(2, "new-key-title", `Your new key “${created.name}”`);
    const panel = el("section", { className: "reveal", "aria-labelledby": "new-key-title", "data-key-id": created.id },
      title,
      el("p", { className: "notice", id: "new-key-note" },
        el("strong", { text: "Copy it now: it will not be shown again." }),
        " Confab keeps only a hash of it. If you lose it, revoke it and create another."),
      el("label", { for: value.id, text: "API key" }),
      el("div", { className: "key-copy" }, value, copy),
      copied,
      el("p", { className: "hint", text: "Send it as “Authorization: Bearer …” to the Confab API." }),
      el("div", { className: "actions" }, done));
    value.setAttribute("aria-describedby", "new-key-note");
    value.addEventListener("focus", () => value.select());
    copy.addEventListener("click", async () => {
      value.focus();
      value.select();
      try {
        await navigator.clipboard.writeText(value.value);
        copied.textContent = "Copied to the clipboard.";
      } catch {
        // No clipboard (permission refused, or none): the key is selected.
        copied.textContent = "The browser did not let Confab copy it: the key is selected, press Ctrl+C (⌘C on a Mac) to copy it.";
      }
    });
    done.addEventListener("click", () => {
      hideKey({ focus: true });
      live.announcer.say("The new key is hidden.");
    });
    reveal.append(panel);
    shown = { id: created.id, panel };
    title.focus();
  }

  async function submit(event) {
    event.preventDefault();
    formError.clear();
    name.removeAttribute("aria-invalid");
    const chosen = scopes.filter((box) => box.checked).map((box) => box.value);
    if (!name.value.trim()) {
      name.setAttribute("aria-invalid", "true");
      formError.show("Give the key a name.");
      name.focus();
      return;
    }
    if (!chosen.length) {
      formError.show("Choose at least one scope.");
      scopes[0].focus();
      return;
    }
    const body = { name: name.value.trim(), scopes: chosen };
    if (expires.value) body.expires_in = Number(expires.value);
    try {
      const created = await busy(create, () => api.post("/api/v1/api-keys", body));
      if (!alive) return;
      name.value = "";
      showKey(created);
      await load();
    } catch (error) {
      if (!alive) return;
      formError.show(error);
    }
  }
  form.addEventListener("submit", submit);

  // --- the list ---
  const listTitle = heading(2, "keys-list-title", "Your keys");
  const status = el("p", { className: "hint", role: "status" });
  const body = el("tbody");
  const table = el("table", { className: "data-table keys-table", hidden: true },
    el("caption", { className: "visually-hidden", text: "Your API keys, newest first" }),
    el("thead", {}, el("tr", {},
      ["Name", "Key", "Scopes", "Created", "Last used", "Expires", "Actions"].map((h) => el("th", { scope: "col", text: h })))),
    body);
  const listError = alertLine();

  function expiry(key) {
    if (!key.expires_at) return "Never";
    const past = Date.parse(key.expires_at) <= Date.now();
    return past ? `Expired ${when(key.expires_at)}` : timeElement(key.expires_at);
  }

  function row(key) {
    const revoke = el("button", { type: "button", className: "danger", text: "Revoke", "aria-label": `Revoke ${key.name}` });
    revoke.addEventListener("click", () => revokeKey(key, revoke));
    const cell = (label, ...content) => el("td", { "data-label": label }, ...content);
    return el("tr", { "data-key-id": key.id },
      el("th", { scope: "row", "data-label": "Name", text: key.name }),
      cell("Key", el("code", { text: `${key.prefix}…` })),
      cell("Scopes", (key.scopes || []).join(", ")),
      cell("Created", timeElement(key.created_at)),
      cell("Last used", timeElement(key.last_used_at, "Never")),
      cell("Expires", expiry(key)),
      cell("Actions", revoke));
  }

  async function load() {
    listError.clear();
    try {
      const page = await api.get("/api/v1/api-keys");
      if (!alive) return;
      const items = Array.isArray(page && page.items) ? page.items : [];
      body.replaceChildren(...items.map(row));
      table.hidden = !items.length;
      status.textContent = items.length
        ? `${items.length} key${items.length === 1 ? "" : "s"}.`
        : "You have no API keys.";
    } catch (error) {
      if (!alive) return;
      status.textContent = "";
      listError.show(`Your keys could not be read: ${explain(error)}`);
    }
  }

  async function revokeKey(key, button) {
    const sure = await confirmDialog({
      title: "Revoke this key?",
      text: `“${key.name}” (${key.prefix}…) stops working at once: every program that uses it is refused from ` +
        "its next request. This cannot be undone.",
      confirm: "Revoke key",
      danger: true,
    });
    if (!sure || !alive) return;
    listError.clear();
    try {
      await busy(button, () => api.del(`/api/v1/api-keys/${encodeURIComponent(key.id)}`));
    } catch (error) {
      if (alive) listError.show(`The key was not revoked: ${explain(error)}`);
      return;
    }
    if (!alive) return;
    if (shown && shown.id === key.id) hideKey();
    const gone = body.querySelector(`tr[data-key-id="${CSS.escape(key.id)}"]`);
    const next = gone && (gone.nextElementSibling || gone.previousElementSibling);
    gone?.remove();
    const left = body.children.length;
    table.hidden = !left;
    status.textContent = left ? `${left} key${left === 1 ? "" : "s"}.` : "You have no API keys.";
    live.announcer.say(`Key “${key.name}” revoked.`);
    const target = next && next.querySelector("button");
    (target || listTitle).focus();
  }

  const section = el("section", { className: "page keys-page", "aria-labelledby": "keys-title" },
    heading(1, "keys-title", "API keys"),
    el("p", { className: "lede", text:
      "Keys let scripts and SDKs call Confab as you without signing in. A key can do only what its scopes " +
      "allow, and never manages keys or accounts." }),
    reveal,
    el("div", { className: "panel" }, form),
    el("div", { className: "panel" }, listTitle, status, listError.node, el("div", { className: "table-scroll" }, table)),
    live.node);
  root.append(section);
  document.title = "API keys · Confab";
  load();

  return () => {
    alive = false;
    hideKey();
    live.announcer.dispose();
    section.remove();
  };
}
