// Administration (issue 21): users and the audit trail, for administrators.
// Routes: /admin (the users), /admin/users/{user_id} (one user and what an
// admin can do to her account), /admin/audit (the trail).
//
// The navigation shows the link to administrators only; anyone else who
// opens these paths is told the page is for administrators, and nothing is
// asked of the API (which refuses non-admins with 403 anyway). Moving
// between the three paths keeps this shell (its heading, its tabs and its
// live region, so "user deleted" is still announced on the list) and
// swaps the part beneath.
import { element as el } from "../dom.js";
import { consoleLink, heading, liveRegion } from "./page-kit.js";

const PARTS = {
  users: () => import("./admin-users.js"),
  user: () => import("./admin-user.js"),
  audit: () => import("./admin-audit.js"),
};

function refusal(root, user) {
  const card = el("section", { className: "card notice-screen", "aria-labelledby": "admin-title" },
    heading(1, "admin-title", "Administration"),
    el("p", { className: "refusal", text: "This page is for administrators only." }),
    el("p", { className: "hint", text: `You are signed in as ${user.username}, who is not an administrator.` }),
    el("a", { href: "/", text: "Back to your conversations" }));
  root.append(card);
  document.title = "Administration · Confab";
  return () => card.remove();
}

export function mount(root, ctx) {
  if (!ctx.user || ctx.user.role !== "admin") return refusal(root, ctx.user || {});
  let alive = true;
  let shown = null; // {key, cleanup}
  let ticket = 0;
  const live = liveRegion();
  const tabs = {
    users: consoleLink(ctx.navigate, "/admin", "Users"),
    audit: consoleLink(ctx.navigate, "/admin/audit", "Audit trail"),
  };
  const host = el("div", { className: "admin-part" });
  const section = el("section", { className: "page admin-page", "aria-labelledby": "admin-title" },
    heading(1, "admin-title", "Administration"),
    el("nav", { className: "tabs", "aria-label": "Administration" }, tabs.users, tabs.audit),
    host,
    live.node);
  root.append(section);
  document.title = "Administration · Confab";

  const partOf = (params) => (params.tab === "audit" ? "audit" : params.userId ? "user" : "users");
  const keyOf = (params) => `${partOf(params)}:${params.userId || ""}`;

  async function show(params, { focus }) {
    const part = partOf(params);
    const mine = ++ticket;
    for (const [name, link] of Object.entries(tabs)) {
      if ((part === "audit") === (name === "audit")) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    const module = await PARTS[part]();
    if (!alive || mine !== ticket) return;
    if (shown) shown.cleanup();
    host.replaceChildren();
    shown = {
      key: keyOf(params),
      cleanup: module.show(host, {
        api: ctx.api,
        user: ctx.user,
        navigate: ctx.navigate,
        userId: params.userId,
        say: (text) => live.announcer.say(text),
      }),
    };
    if (focus) host.querySelector("h2")?.focus({ preventScroll: true });
  }

  show(ctx.params || {}, { focus: false });

  return {
    unmount() {
      alive = false;
      if (shown) shown.cleanup();
      live.announcer.dispose();
      section.remove();
    },
    update(params) {
      if (!shown || keyOf(params) !== shown.key) show(params, { focus: true });
      return true;
    },
  };
}
