// Modal dialogs of the chat screen, on the native <dialog> (focus kept
// inside, Esc cancels, focus returns to the control that opened it).
import { create as el } from "../dom.js";

function open(dialog) {
  const opener = document.activeElement;
  document.body.append(dialog);
  dialog.showModal();
  dialog.addEventListener("close", () => {
    dialog.remove();
    if (opener && opener.isConnected) opener.focus();
  });
}

/** Asks to confirm; resolves true when the person confirms. */
export function confirmDialog({ title, text, confirm, danger = false }) {
  return new Promise((resolve) => {
    const heading = el("h2", { id: "confirm-title", textContent: title });
    const yes = el("button", { type: "submit", value: "yes", textContent: confirm, className: danger ? "danger" : "primary" });
    const no = el("button", { type: "submit", value: "no", textContent: "Cancel" });
    const form = el("form", { method: "dialog" }, heading, el("p", { textContent: text }), el("div", { className: "actions" }, no, yes));
    const dialog = el("dialog", { className: "dialog" }, form);
    dialog.setAttribute("aria-labelledby", "confirm-title");
    open(dialog);
    no.focus();
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"));
  });
}

/**
 * Asks to confirm something that cannot be undone by typing `expected`
 * (say, the username of the account to delete): the confirming button
 * stays disabled until the text matches. Resolves true when confirmed.
 */
export function typedConfirmDialog({ title, text, expected, label, confirm }) {
  return new Promise((resolve) => {
    const heading = el("h2", { id: "typed-confirm-title", textContent: title });
    const input = el("input", { id: "typed-confirm-input", autocomplete: "off", spellcheck: false });
    const yes = el("button", { type: "submit", value: "yes", textContent: confirm, className: "primary danger", disabled: true });
    const no = el("button", { type: "button", textContent: "Cancel" });
    const form = el("form", { method: "dialog", className: "typed-confirm" },
      heading,
      el("p", { textContent: text }),
      el("label", { htmlFor: input.id, textContent: label }),
      input,
      el("div", { className: "actions" }, no, yes));
    const dialog = el("dialog", { className: "dialog" }, form);
    dialog.setAttribute("aria-labelledby", "typed-confirm-title");
    input.addEventListener("input", () => {
      yes.disabled = input.value.trim() !== expected;
    });
    no.addEventListener("click", () => dialog.close("no"));
    open(dialog);
    input.focus();
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"));
  });
}

/**
 * Lets the person choose an agent from its card (name, description,
 * skills); resolves the agent's id, or null.
 */
export function agentDialog(agents) {
  return new Promise((resolve) => {
    const heading = el("h2", { id: "agent-dialog-title", textContent: "New conversation" });
    const intro = el("p", { textContent: "Choose the agent to talk to." });
    const list = el("ul", { className: "agent-cards" });
    list.setAttribute("aria-labelledby", "agent-dialog-title");
    agents.forEach((agent, index) => {
      const card = agent.card || {};
      const name = card.name || agent.id;
      const button = el("button", { type: "submit", value: agent.id, className: "agent-card" });
      // Named briefly; the card's text is its description.
      const about = el("span", { className: "agent-about", id: `agent-about-${index}` });
      button.setAttribute("aria-label", `Start a conversation with ${name}`);
      button.setAttribute("aria-describedby", about.id);
      button.append(el("strong", { className: "agent-name", textContent: name }), about);
      if (card.description) about.append(el("span", { className: "agent-description", textContent: card.description }));
      if (!agent.card) {
        about.append(el("span", { className: "agent-unavailable", textContent: `Card unavailable: ${agent.error || "no answer"}` }));
      }
      const skills = Array.isArray(card.skills) ? card.skills : [];
      for (const skill of skills) {
        const line = el("span", { className: "agent-skill" }, el("span", { className: "skill-name", textContent: skill.name || skill.id || "Skill" }));
        if (skill.description) line.append(` — ${skill.description}`);
        const examples = Array.isArray(skill.examples) ? skill.examples : [];
        if (examples.length) line.append(el("span", { className: "skill-example", textContent: ` (e.g. “${examples[0]}”)` }));
        about.append(line);
      }
      list.append(el("li", {}, button));
    });
    if (!agents.length) list.append(el("li", { textContent: "No agent is registered." }));
    const cancel = el("button", { type: "submit", value: "", textContent: "Cancel" });
    const form = el("form", { method: "dialog" }, heading, intro, list, el("div", { className: "actions" }, cancel));
    const dialog = el("dialog", { className: "dialog agent-dialog" }, form);
    dialog.setAttribute("aria-labelledby", "agent-dialog-title");
    open(dialog);
    (list.querySelector("button") || cancel).focus();
    dialog.addEventListener("close", () => resolve(dialog.returnValue || null));
  });
}
