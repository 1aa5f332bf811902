// Account (issue 17, point 7): who is signed in; sign out of this device or
// of every device. The app shows the sign-in form when the session ends.
import { create as el } from "../dom.js";

export function mount(root, { api, user }) {
  const heading = el("h1", { id: "account-title", textContent: "Account", tabIndex: -1 });
  const facts = el("dl", { className: "facts" });
  for (const [term, value] of [
    ["Username", user.username],
    ["Role", user.role],
    ["User id", user.id],
  ]) {
    facts.append(el("dt", { textContent: term }), el("dd", { textContent: value }));
  }
  const error = el("p", { className: "error", hidden: true });
  error.setAttribute("role", "alert");
  const here = el("button", { type: "button", textContent: "Sign out of this device" });
  const everywhere = el("button", { type: "button", className: "danger", textContent: "Sign out everywhere" });
  const hint = el("p", {
    className: "hint",
    textContent:
      "Signing out everywhere ends the sessions of every browser and app signed in as you: they can no " +
      "longer renew their access, which ends within 30 minutes.",
  });
  const card = el(
    "section",
    { className: "card account" },
    heading,
    el("p", { textContent: `You are signed in as ${user.username}.` }),
    facts,
    error,
    el("div", { className: "actions" }, here, everywhere),
    hint,
  );
  card.setAttribute("aria-labelledby", "account-title");
  root.append(card);

  const signOut = async (options, button) => {
    error.hidden = true;
    here.disabled = everywhere.disabled = true;
    button.setAttribute("aria-busy", "true");
    try {
      await api.logout(options);
    } catch (failure) {
      error.textContent = `Could not sign out everywhere: ${failure.message}`;
      error.hidden = false;
    } finally {
      here.disabled = everywhere.disabled = false;
      button.removeAttribute("aria-busy");
    }
  };
  here.addEventListener("click", () => signOut({}, here));
  everywhere.addEventListener("click", () => signOut({ everywhere: true }, everywhere));
  document.title = "Account · Confab";
  return () => {};
}
