// The chat screen (`/` and `/c/{conversation_id}`): the conversations
// sidebar beside the open conversation (and its tree panel). On a narrow
// screen the two take turns: `/` shows the list, a conversation fills the
// screen with a way back.
import { ConversationPane } from "./conversation.js";
import { Sidebar } from "./sidebar.js";
import { create as el } from "../dom.js";

export function mount(root, { api, navigate, params }) {
  // The agents are listed once per visit of the screen.
  const agents = api.agents().then((page) => page.items || []);
  agents.catch(() => {});
  const open = (id) => navigate(`/c/${encodeURIComponent(id)}`);
  const sidebar = new Sidebar({
    api,
    agents,
    onOpen: open,
    onDeleted: (id) => {
      if (id === openId) navigate("/", { replace: true });
    },
  });
  sidebar.onRenamed = (conversation) => pane?.renamed(conversation);
  const host = el("div", { className: "conversation-host" });
  // The screen's title for assistive technology; the sidebar and the
  // conversation carry the visible headings.
  const title = el("h1", { className: "visually-hidden", textContent: "Chat" });
  const layout = el("div", { className: "chat-screen" }, title, sidebar.el, host);
  root.append(layout);
  sidebar.reload();

  let pane = null;
  let openId = null;

  function nothingOpen() {
    const start = el("button", { type: "button", className: "primary", textContent: "Start a conversation" });
    start.addEventListener("click", () => sidebar.create());
    host.replaceChildren(
      el(
        "section",
        { className: "conversation placeholder" },
        el("h2", { textContent: "Choose a conversation" }),
        el("p", { textContent: "Pick one from the list, or start a new one with an agent." }),
        start,
      ),
    );
    document.title = "Chat · Confab";
  }

  function show(next) {
    const id = next.conversationId || null;
    layout.classList.toggle("has-conversation", Boolean(id));
    // Where the router puts the focus: the list, or the open conversation's composer.
    sidebar.heading.toggleAttribute("data-autofocus", !id);
    if (id === openId && (pane || !id)) return false;
    pane?.unmount();
    pane = null;
    openId = id;
    sidebar.select(id);
    if (!id) {
      nothingOpen();
      return true;
    }
    pane = new ConversationPane({
      api,
      conversationId: id,
      agents,
      onActivity: (conversation) => sidebar.upsert(conversation, { toTop: true }),
    });
    host.replaceChildren(pane.el);
    return true;
  }

  show(params);
  return {
    unmount() {
      pane?.unmount();
      sidebar.unmount();
    },
    update(next) {
      const changed = show(next);
      if (changed) {
        if (pane) pane.focus();
        else sidebar.heading.focus?.();
      }
      return true;
    },
  };
}
