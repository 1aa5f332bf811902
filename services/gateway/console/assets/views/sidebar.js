// The conversations sidebar (issue 17, point 2): the person's
// conversations, most recently active first (the API's order), more loaded
// as the list is scrolled to its end (the API's `next_cursor`; a "More
// conversations" button does the same from the keyboard), a filter by
// agent, a new conversation started from an agent's card, rename in place
// and delete after a confirmation.
//
// Selectors the browser tests rely on: the complementary landmark named
// "Conversations"; the button "New conversation"; the select labelled
// "Agent"; `li.conversation-item[data-id]` with its link
// (`a.conversation-link`, `aria-current="page"` when open) and buttons named
// "Rename …" and "Delete …"; the rename field labelled "New title".
import { agentDialog, confirmDialog } from "./dialogs.js";
import { create as el } from "../dom.js";

const PAGE = 20;

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "short", timeStyle: "short" });

function when(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "" : dateTime.format(date);
}

export class Sidebar {
  /**
   * `agents` resolves the API's agent list; `onOpen(id)` opens a
   * conversation, `onDeleted(id)` is told one was deleted.
   */
  constructor({ api, agents, onOpen, onDeleted }) {
    this.api = api;
    this.agents = agents;
    this.onOpen = onOpen;
    this.onDeleted = onDeleted;
    this.items = new Map(); // id → {conversation, li}
    this.cursor = null;
    this.loading = false;
    this.done = false;
    this.selected = null;
    this.generation = 0;
    this.build();
  }

  build() {
    this.heading = el("h2", { id: "sidebar-title", textContent: "Conversations", tabIndex: -1 });
    this.newButton = el("button", { type: "button", className: "primary", textContent: "New conversation" });
    this.filter = el("select", { id: "agent-filter" }, el("option", { value: "", textContent: "All agents" }));
    this.error = el("p", { className: "error", hidden: true });
    this.error.setAttribute("role", "alert");
    this.list = el("ul", { className: "conversation-list" });
    this.list.setAttribute("aria-labelledby", "sidebar-title");
    this.more = el("button", { type: "button", className: "more", textContent: "More conversations", hidden: true });
    this.status = el("p", { className: "list-status" });
    this.status.setAttribute("role", "status");
    this.sentinel = el("div", { className: "sentinel" });
    this.el = el(
      "aside",
      { className: "sidebar" },
      el("div", { className: "sidebar-head" }, this.heading, this.newButton),
      el("div", { className: "filter" }, el("label", { htmlFor: "agent-filter", textContent: "Agent" }), this.filter),
      this.error,
      this.list,
      el("div", { className: "list-end" }, this.sentinel, this.more, this.status),
    );
    this.el.setAttribute("aria-labelledby", "sidebar-title");

    this.newButton.addEventListener("click", () => this.create());
    this.filter.addEventListener("change", () => this.reload());
    this.more.addEventListener("click", () => this.loadMore());
    this.observer = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) this.loadMore();
    });
    this.observer.observe(this.sentinel);
    this.agents
      .then((agents) => {
        for (const agent of agents) {
          this.filter.append(el("option", { value: agent.id, textContent: agent.card?.name || agent.id }));
        }
      })
      .catch(() => {});
  }

  showError(text) {
    this.error.textContent = text;
    this.error.hidden = !text;
  }

  reload() {
    this.generation += 1;
    this.items.clear();
    this.list.replaceChildren();
    this.cursor = null;
    this.done = false;
    this.loading = false;
    this.showError("");
    return this.loadMore();
  }

  async loadMore() {
    if (this.loading || this.done) return;
    this.loading = true;
    const generation = this.generation;
    this.status.textContent = "Loading conversations…";
    try {
      const page = await this.api.conversations({ agentId: this.filter.value, cursor: this.cursor, limit: PAGE });
      if (generation !== this.generation) return;
      for (const conversation of page.items) {
        if (!this.items.has(conversation.id)) this.list.append(this.item(conversation));
      }
      this.cursor = page.next_cursor;
      this.done = !page.next_cursor;
      this.more.hidden = this.done;
      const count = this.items.size;
      this.status.textContent = !count
        ? this.filter.value
          ? "No conversation with this agent yet."
          : "No conversation yet: start one."
        : this.done
          ? `${count} conversation${count === 1 ? "" : "s"}`
          : "";
    } catch (failure) {
      if (generation !== this.generation) return;
      this.status.textContent = "";
      this.showError(`Could not load the conversations: ${failure.message}`);
    } finally {
      if (generation === this.generation) this.loading = false;
    }
    // A tall screen may show the whole first page with the end still in
    // view: the observer does not fire again for it, so look once more.
    if (generation === this.generation && !this.done && this.sentinelVisible()) this.loadMore();
  }

  sentinelVisible() {
    const box = this.sentinel.getBoundingClientRect();
    const area = this.list.closest(".sidebar")?.getBoundingClientRect();
    return box.top < window.innerHeight && (!area || box.top <= area.bottom) && this.sentinel.offsetParent !== null;
  }

  item(conversation) {
    const li = el("li", { className: "conversation-item" });
    li.dataset.id = conversation.id;
    this.items.set(conversation.id, { conversation, li });
    this.fill(li, conversation);
    return li;
  }

  fill(li, conversation) {
    const title = el("span", { className: "conversation-title", textContent: conversation.title });
    const count = conversation.message_count;
    const meta = el("span", {
      className: "conversation-meta",
      textContent: [conversation.agent_id, `${count} message${count === 1 ? "" : "s"}`, when(conversation.updated_at)]
        .filter(Boolean)
        .join(" · "),
    });
    const link = el("a", { className: "conversation-link", href: `/c/${encodeURIComponent(conversation.id)}` }, title, meta);
    if (conversation.id === this.selected) link.setAttribute("aria-current", "page");
    const rename = el("button", { type: "button", className: "icon-button", textContent: "Rename" });
    rename.setAttribute("aria-label", `Rename “${conversation.title}”`);
    const remove = el("button", { type: "button", className: "icon-button danger", textContent: "Delete" });
    remove.setAttribute("aria-label", `Delete “${conversation.title}”`);
    rename.addEventListener("click", () => this.startRename(conversation.id));
    remove.addEventListener("click", () => this.remove(conversation.id));
    li.classList.toggle("selected", conversation.id === this.selected);
    li.replaceChildren(link, el("div", { className: "item-actions" }, rename, remove));
  }

  /** Marks `id` as the open conversation. */
  select(id) {
    this.selected = id || null;
    for (const [itemId, { li }] of this.items) {
      const link = li.querySelector("a.conversation-link");
      li.classList.toggle("selected", itemId === this.selected);
      if (!link) continue;
      if (itemId === this.selected) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
  }

  /**
   * Shows `conversation` as it now is; `toTop` moves it first (it was just
   * active, as the API orders). One not listed is added when it passes the
   * filter.
   */
  upsert(conversation, { toTop = false } = {}) {
    if (this.filter.value && conversation.agent_id !== this.filter.value) return;
    const known = this.items.get(conversation.id);
    if (known) {
      known.conversation = { ...known.conversation, ...conversation };
      if (!known.li.querySelector("form")) this.fill(known.li, known.conversation);
      if (toTop) this.list.prepend(known.li);
      return;
    }
    if (!toTop) return;
    this.list.prepend(this.item(conversation));
    this.status.textContent = this.status.textContent.startsWith("No conversation") ? "" : this.status.textContent;
  }

  async create() {
    this.showError("");
    let agents;
    try {
      agents = await this.agents;
    } catch (failure) {
      this.showError(`Could not load the agents: ${failure.message}`);
      return;
    }
    const agentId = await agentDialog(agents);
    if (!agentId) return;
    try {
      const conversation = await this.api.createConversation(agentId);
      this.upsert(conversation, { toTop: true });
      this.onOpen(conversation.id);
    } catch (failure) {
      this.showError(`Could not start a conversation: ${failure.message}`);
    }
  }

  startRename(id) {
    const known = this.items.get(id);
    if (!known) return;
    const { li, conversation } = known;
    const field = el("input", { id: `rename-${id}`, value: conversation.title, maxLength: 200, required: true });
    const error = el("p", { className: "error", hidden: true });
    error.setAttribute("role", "alert");
    const save = el("button", { type: "submit", className: "primary", textContent: "Save" });
    const cancel = el("button", { type: "button", textContent: "Cancel" });
    const form = el(
      "form",
      { className: "rename-form" },
      el("label", { htmlFor: field.id, textContent: "New title" }),
      field,
      el("div", { className: "actions" }, save, cancel),
      error,
    );
    const finish = () => {
      this.fill(li, known.conversation);
      li.querySelector("button")?.focus();
    };
    cancel.addEventListener("click", finish);
    field.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        event.stopPropagation();
        finish();
      }
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const title = field.value.trim();
      if (!title) {
        error.textContent = "A title cannot be empty.";
        error.hidden = false;
        return;
      }
      save.disabled = true;
      try {
        const renamed = await this.api.renameConversation(id, title);
        known.conversation = { ...known.conversation, ...renamed };
        finish();
        this.onRenamed?.(known.conversation);
      } catch (failure) {
        error.textContent = failure.message;
        error.hidden = false;
        save.disabled = false;
      }
    });
    li.replaceChildren(form);
    field.focus();
    field.select();
  }

  async remove(id) {
    const known = this.items.get(id);
    if (!known) return;
    const confirmed = await confirmDialog({
      title: "Delete this conversation?",
      text: `“${known.conversation.title}” and all its messages will be deleted. This cannot be undone.`,
      confirm: "Delete",
      danger: true,
    });
    if (!confirmed) return;
    try {
      await this.api.deleteConversation(id);
    } catch (failure) {
      if (failure.status !== 404) {
        this.showError(`Could not delete the conversation: ${failure.message}`);
        return;
      }
    }
    const next = known.li.nextElementSibling || known.li.previousElementSibling;
    known.li.remove();
    this.items.delete(id);
    this.status.textContent = `Deleted “${known.conversation.title}”.`;
    (next?.querySelector("a") || this.newButton).focus();
    this.onDeleted(id);
  }

  unmount() {
    this.observer.disconnect();
    this.generation += 1;
  }
}
