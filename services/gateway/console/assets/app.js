// The web console: boot, the sign-in gate, and a router on the History API.
//
// Routes: `/` (conversations and chat), `/c/{conversation_id}`, `/trace`,
// `/trace/{agent_id}`, `/calls`, `/calls/{call_id}`, `/account`, `/keys`,
// `/usage`, `/admin`, `/admin/users/{user_id}`, `/admin/audit`. Any other
// path shows a "not found" screen with the navigation. The navigation's
// Admin link is shown to administrators only (the view itself tells anyone
// else it is for administrators).
//
// A view module exports `mount(root, ctx)` with `ctx = {api, user,
// navigate(path), params}` and returns its `unmount` function. A view may
// instead return `{unmount, update(params)}`: moving between two paths of
// the same view then calls `update` rather than mounting it anew (the chat
// keeps its sidebar while another conversation opens).
//
// The live trace and LLM calls views are imported when first shown; a build
// without them says so on their screen instead of failing the page.
import * as api from "./api.js";
import { ApiError } from "./api.js";
import { ensureViewStyles } from "./dom.js";

const $ = (id) => document.getElementById(id);

/** A path segment decoded; a malformed escape is kept as it was written. */
function segment(text) {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

const ROUTES = [
  { pattern: /^\/$/, section: "chat", load: () => import("./views/chat.js"), params: () => ({}) },
  {
    pattern: /^\/c\/([^/]+)$/,
    section: "chat",
    load: () => import("./views/chat.js"),
    params: (m) => ({ conversationId: segment(m[1]) }),
  },
  {
    pattern: /^\/trace(?:\/([^/]+))?$/,
    section: "trace",
    title: "Live trace",
    external: true,
    load: () => import("./views/trace.js"),
    params: (m) => ({ agentId: m[1] ? segment(m[1]) : undefined }),
  },
  {
    pattern: /^\/calls(?:\/([^/]+))?$/,
    section: "calls",
    title: "LLM calls",
    external: true,
    load: () => import("./views/calls.js"),
    params: (m) => ({ callId: m[1] ? segment(m[1]) : undefined }),
  },
  { pattern: /^\/account$/, section: "account", load: () => import("./views/account.js"), params: () => ({}) },
  { pattern: /^\/keys$/, section: "keys", title: "API keys", load: () => import("./views/keys.js"), params: () => ({}) },
  { pattern: /^\/usage$/, section: "usage", title: "Usage", load: () => import("./views/usage.js"), params: () => ({}) },
  {
    pattern: /^\/admin(?:\/(audit)|\/users\/([^/]+))?$/,
    section: "admin",
    title: "Administration",
    load: () => import("./views/admin.js"),
    params: (m) => ({ tab: m[1] ? "audit" : "users", userId: m[2] ? segment(m[2]) : undefined }),
  },
];

let user = null;
let screen = null; // the element views mount into
let current = null; // {section, unmount, update}
let routing = 0; // the latest navigation; an older one that resolves late is dropped

function setSection(section) {
  for (const a of $("nav").querySelectorAll("a")) {
    if (a.dataset.section === section) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

function unmountCurrent() {
  if (!current) return;
  try {
    current.unmount();
  } catch (error) {
    console.error(error);
  }
  current = null;
  screen.replaceChildren();
}

function message(title, text, linkText) {
  const section = document.createElement("section");
  section.className = "card notice-screen";
  const heading = document.createElement("h1");
  heading.textContent = title;
  heading.tabIndex = -1;
  const p = document.createElement("p");
  p.textContent = text;
  section.append(heading, p);
  if (linkText) {
    const a = document.createElement("a");
    a.href = "/";
    a.textContent = linkText;
    section.append(a);
  }
  return section;
}

/** Shows the screen of the current location. */
async function route({ focus = true } = {}) {
  const ticket = ++routing;
  const path = location.pathname.replace(/\/+$/, "") || "/";
  const found = ROUTES.map((r) => ({ r, m: r.pattern.exec(path) })).find(({ m }) => m);
  if (!found) {
    unmountCurrent();
    setSection(null);
    document.title = "Not found · Confab";
    screen.append(message("Nothing here", `There is no page at ${path}.`, "Back to your conversations"));
    if (focus) screen.querySelector("h1").focus();
    return;
  }
  const { r, m } = found;
  const params = r.params(m);
  setSection(r.section);
  if (current && current.section === r.section && current.update && current.update(params)) return;
  let module;
  try {
    module = await r.load();
  } catch (error) {
    if (ticket !== routing) return;
    unmountCurrent();
    console.warn(`the ${r.section} view could not be loaded`, error);
    document.title = `${r.title || r.section} · Confab`;
    screen.append(message(r.title || r.section, `The ${r.title || r.section} view is not available in this build of Confab.`));
    if (focus) screen.querySelector("h1").focus();
    return;
  }
  if (ticket !== routing) return;
  unmountCurrent();
  if (r.external) ensureViewStyles();
  if (r.title) document.title = `${r.title} · Confab`;
  const root = document.createElement("div");
  root.className = `view view-${r.section}`;
  screen.append(root);
  const mounted = module.mount(root, { api, user, navigate, params });
  current =
    typeof mounted === "function"
      ? { section: r.section, unmount: mounted }
      : { section: r.section, unmount: mounted?.unmount || (() => {}), update: mounted?.update };
  if (focus && !root.contains(document.activeElement)) {
    const target = root.querySelector("[data-autofocus]") || root.querySelector("h1, h2");
    if (target) {
      if (!target.hasAttribute("tabindex") && !target.matches("input, textarea, select, button, a")) {
        target.tabIndex = -1;
      }
      target.focus({ preventScroll: true });
    }
  }
}

/** Goes to `path` inside the console (a new history entry unless `replace`). */
export function navigate(path, { replace = false } = {}) {
  if (path === location.pathname + location.search) return route({ focus: false });
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  return route();
}

// --- the sign-in gate ---------------------------------------------------------------

function showSignIn(notice) {
  unmountCurrent();
  user = null;
  $("nav").hidden = true;
  $("nav-admin").hidden = true;
  $("whoami").hidden = true;
  $("booting").hidden = true;
  $("sign-in").hidden = false;
  document.title = "Sign in · Confab";
  const note = $("sign-in-notice");
  note.textContent = notice || "";
  note.hidden = !notice;
  $("username").focus();
}

async function enter() {
  user = await api.me();
  $("sign-in").hidden = true;
  $("booting").hidden = true;
  $("nav").hidden = false;
  $("nav-admin").hidden = user.role !== "admin";
  const whoami = $("whoami");
  whoami.textContent = `Signed in as ${user.username}`;
  whoami.hidden = false;
  await route();
}

function clearErrors() {
  for (const id of ["sign-in-error", "username-error", "password-error"]) {
    $(id).hidden = true;
    $(id).textContent = "";
  }
  $("username").removeAttribute("aria-invalid");
  $("password").removeAttribute("aria-invalid");
}

/** Puts an error where it happened: at the field it concerns, or the form's. */
function showError(failure) {
  let field = null;
  let text;
  if (!(failure instanceof ApiError)) {
    text = "Confab cannot be reached; check the connection and try again.";
  } else if (failure.status === 429) {
    const wait = failure.retryAfter;
    text = wait
      ? `Too many attempts. Wait ${wait} second${wait === 1 ? "" : "s"} before trying again.`
      : "Too many attempts. Wait a minute before trying again.";
  } else if (failure.status === 401) {
    text = "Wrong username or password.";
  } else if (failure.code === "username_taken") {
    field = "username";
    text = "This username is taken; choose another.";
  } else if (failure.code === "invalid_username") {
    field = "username";
    text = failure.message;
  } else if (failure.code === "weak_password" || failure.code === "invalid_password") {
    field = "password";
    text = failure.message;
  } else {
    text = failure.message;
  }
  if (field) {
    const error = $(`${field}-error`);
    error.textContent = text;
    error.hidden = false;
    $(field).setAttribute("aria-invalid", "true");
    // The field's error is also announced at once.
    $("sign-in-error").textContent = text;
    $("sign-in-error").hidden = false;
    $("sign-in-error").classList.add("visually-hidden");
    $(field).focus();
  } else {
    $("sign-in-error").classList.remove("visually-hidden");
    $("sign-in-error").textContent = text;
    $("sign-in-error").hidden = false;
  }
}

let submitting = false;

async function submit(action) {
  if (submitting) return;
  submitting = true;
  clearErrors();
  $("sign-in-notice").hidden = true;
  const username = $("username").value.trim();
  const password = $("password").value;
  const buttons = $("credentials").querySelectorAll("button");
  for (const b of buttons) b.disabled = true;
  try {
    if (action === "register") await api.register(username, password);
    await api.login(username, password);
    $("password").value = "";
    await enter();
  } catch (failure) {
    showError(failure);
  } finally {
    for (const b of buttons) b.disabled = false;
    submitting = false;
  }
}

async function boot() {
  screen = document.createElement("div");
  screen.id = "screen";
  $("view").append(screen);

  $("credentials").addEventListener("submit", (event) => {
    event.preventDefault();
    submit("login");
  });
  $("register").addEventListener("click", () => submit("register"));

  // Links inside the console move through history instead of reloading.
  document.addEventListener("click", (event) => {
    const a = event.target.closest("a[href]");
    if (!a || event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey || a.target) return;
    const url = new URL(a.href, location.href);
    if (url.origin !== location.origin || url.pathname.startsWith("/api/")) return;
    if (a.classList.contains("skip-link")) return;
    event.preventDefault();
    if (!user) return;
    navigate(url.pathname + url.search);
  });
  window.addEventListener("popstate", () => user && route());
  api.onSessionEnd((why) => showSignIn(why));

  try {
    if (await api.restore()) {
      await enter();
      return;
    }
  } catch (failure) {
    if (failure instanceof ApiError && failure.status !== 401) {
      showSignIn(failure.message);
      return;
    }
  }
  showSignIn();
}

boot();
