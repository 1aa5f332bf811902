// One open conversation (issue 17, point 3): its messages (older ones
// loaded on scrolling up, by `before_seq`), the composer, the reply
// streaming in, Stop, and the tree panel beside it (seed 004).
//
// Streams. A turn this tab starts is read from the response of
// `POST …/messages/stream`; any other turn is read from `GET …/stream`
// (re-attach), both through fetch (`../sse.js`) so the session's headers
// and `Last-Event-ID` can be sent. Every turn's events are one log on the
// server with sequence numbers as event ids, so:
// - a connection that drops mid-reply re-attaches with `Last-Event-ID` set
//   to the last event seen and gets exactly the events after it;
// - a page loaded (or reloaded) while a reply is being written finds the
//   question as the newest message (a reply is listed once it has ended)
//   and re-attaches from the turn's start (`Last-Event-ID: 0`): the text it
//   shows is rebuilt from the log, every word exactly once;
// - `message_start` (the first event of a turn, and of an ended turn's
//   replay) resets the reply it names, so a replay never doubles text.
//
// Following turns started elsewhere (a second tab, another device, an API
// client). The envelope WebSocket (`../chat-socket.js`, also the tree
// panel's) hears every turn of the conversation as it starts, whoever
// started it; but its frames carry no event ids or message id until the
// end. So the socket is used as the signal only: when it shows a turn
// beginning while this tab is not reading one, the tab re-attaches over
// SSE from the turn's start, and renders it exactly as its own turns. One
// rendering path, the same exactly-once guarantee, and no socket frame can
// double a word. (The socket's end frame, with the message id, catches a
// turn so short that it ended before its first chunk was seen.)
//
// Selectors the browser tests rely on: the heading `#conversation-title`;
// the region named "Chat history" with `ol.message-list`; the textbox labelled
// "Message"; the buttons "Send", "Stop", "Load older messages" and "Tree"
// (`aria-expanded`); the panel `#tree-panel` (complementary, "Tree");
// `#composer-error`; the status region `#reply-announcer`.
import { readEvents } from "../sse.js";
import { Announcer } from "./announcer.js";
import { MessageView, recordOf } from "./message.js";
import { create as el } from "../dom.js";

const PAGE = 50;
const UNTITLED = "New conversation";
/** Re-attaching after a dropped connection: tries, and the first wait (ms, doubled each time). */
const REATTACH_TRIES = 5;
const REATTACH_WAIT_MS = 500;

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });

/** Words for a failure to start a turn. */
function failureText(failure) {
  if (failure.status === 429) {
    const wait = failure.retryAfter;
    return wait ? `${failure.message} Wait ${wait} s before sending again.` : failure.message;
  }
  if (failure.status) return failure.message;
  return "Confab cannot be reached; check the connection and try again.";
}

/** The title a conversation gets from its first message, as the API's unified chat gives one. */
function titleFrom(text) {
  return [...text.split(/\s+/).filter(Boolean).join(" ")].slice(0, 200).join("");
}

const TREE_PREFERENCE = "confab.treePanel";
const WIDE = "(min-width: 1200px)";

export class ConversationPane {
  constructor({ api, conversationId, agents, onActivity, onMissing }) {
    this.api = api;
    this.id = conversationId;
    this.agents = agents;
    this.onActivity = onActivity;
    this.onMissing = onMissing;
    this.controller = new AbortController();
    this.views = new Map(); // message id → MessageView
    this.turn = null;
    this.olderCursor = null;
    this.socket = null;
    this.socketTurnOpen = false;
    this.treeMounted = false;
    this.treeUnmount = null;
    this.conversation = null;
    this.follow = true;
    this.build();
    this.ready = this.load();
  }

  build() {
    this.heading = el("h2", { id: "conversation-title", tabIndex: -1, textContent: "Loading…" });
    this.agentLabel = el("span", { className: "agent-badge" });
    this.treeToggle = el("button", { type: "button", className: "tree-toggle", textContent: "Tree" });
    this.treeToggle.setAttribute("aria-controls", "tree-panel");
    this.treeToggle.setAttribute("aria-expanded", "false");
    const back = el("a", { className: "back", href: "/", textContent: "‹ Conversations" });

    this.olderButton = el("button", { type: "button", className: "older", textContent: "Load older messages", hidden: true });
    this.topSentinel = el("div", { className: "sentinel" });
    this.list = el("ol", { className: "message-list" });
    this.empty = el("div", { className: "empty-chat", hidden: true });
    this.scroller = el("div", { className: "messages", tabIndex: 0 }, this.topSentinel, this.olderButton, this.list, this.empty);
    this.scroller.setAttribute("role", "region");
    this.scroller.setAttribute("aria-label", "Chat history");

    this.input = el("textarea", { id: "composer-input", name: "message", rows: 1, maxLength: 10000 });
    this.input.dataset.autofocus = "";
    this.input.setAttribute("aria-describedby", "composer-hint composer-error");
    this.sendButton = el("button", { type: "submit", className: "primary", textContent: "Send" });
    this.stopButton = el("button", { type: "button", className: "stop danger", textContent: "Stop", hidden: true });
    this.error = el("p", { id: "composer-error", className: "error", hidden: true });
    this.error.setAttribute("role", "alert");
    this.form = el(
      "form",
      { className: "composer" },
      el("label", { htmlFor: "composer-input", className: "visually-hidden", textContent: "Message" }),
      this.input,
      el("div", { className: "composer-actions" }, this.sendButton, this.stopButton),
      this.error,
      el("p", { id: "composer-hint", className: "hint", textContent: "Enter sends · Shift+Enter new line · Esc stops the reply" }),
    );

    this.treePanel = el("aside", { id: "tree-panel", className: "tree-panel", hidden: true });
    this.treePanel.setAttribute("aria-label", "Tree");
    const announcer = el("div", { id: "reply-announcer", className: "visually-hidden" });
    announcer.setAttribute("role", "status");
    announcer.setAttribute("aria-live", "polite");
    this.announcer = new Announcer(announcer);

    this.el = el(
      "section",
      { className: "conversation" },
      el("header", { className: "conversation-head" }, back, el("div", { className: "titles" }, this.heading, this.agentLabel), this.treeToggle),
      el("div", { className: "conversation-main" }, el("div", { className: "chat-column" }, this.scroller, this.form), this.treePanel),
      announcer,
    );
    this.el.setAttribute("aria-labelledby", "conversation-title");

    const signal = this.controller.signal;
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.send();
    });
    this.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing && !event.altKey && !event.ctrlKey && !event.metaKey) {
        event.preventDefault();
        this.send();
      }
    });
    // Esc stops the reply wherever the focus is, unless something nearer
    // (a dialog, a field being edited) used it.
    document.addEventListener(
      "keydown",
      (event) => {
        if (event.key !== "Escape" || event.defaultPrevented || !this.turn) return;
        if (document.querySelector("dialog[open]")) return;
        event.preventDefault();
        this.stop();
      },
      { signal },
    );
    this.stopButton.addEventListener("click", () => this.stop());
    this.olderButton.addEventListener("click", () => this.loadOlder());
    this.scroller.addEventListener(
      "scroll",
      () => {
        const gap = this.scroller.scrollHeight - this.scroller.scrollTop - this.scroller.clientHeight;
        this.follow = gap < 80;
      },
      { passive: true },
    );
    this.olderObserver = new IntersectionObserver(
      (entries) => {
        if (entries.some((e) => e.isIntersecting) && this.olderCursor && this.loaded) this.loadOlder();
      },
      { root: this.scroller },
    );
    this.treeToggle.addEventListener("click", () => this.setTree(this.treePanel.hidden, true));
  }

  // --- loading ---------------------------------------------------------------------

  async load() {
    const signal = this.controller.signal;
    let conversation;
    let page;
    try {
      [conversation, page] = await Promise.all([
        this.api.conversation(this.id),
        this.api.messages(this.id, { limit: PAGE }),
      ]);
    } catch (failure) {
      if (signal.aborted) return;
      this.heading.textContent = failure.status === 404 ? "Conversation not found" : "Could not open the conversation";
      this.empty.replaceChildren(
        el("p", {
          textContent:
            failure.status === 404
              ? "This conversation does not exist, or it is not yours. Choose another one or start a new one."
              : failure.message,
        }),
      );
      this.empty.hidden = false;
      this.form.hidden = true;
      this.treeToggle.hidden = true;
      if (failure.status === 404) this.onMissing?.(this.id);
      return;
    }
    if (signal.aborted) return;
    this.conversation = conversation;
    this.showTitle();
    const agents = await this.agents.catch(() => []);
    if (signal.aborted) return;
    const agent = agents.find((a) => a.id === conversation.agent_id);
    this.agentName = agent?.card?.name || conversation.agent_id;
    this.agentLabel.textContent = `with ${this.agentName}`;
    this.input.placeholder = `Message ${this.agentName}…`;
    this.examples = (agent?.card?.skills || []).flatMap((s) => s.examples || []).slice(0, 3);

    const fragment = document.createDocumentFragment();
    for (const message of page.items) fragment.append(this.view(recordOf(message)).el);
    this.list.append(fragment);
    this.olderCursor = page.next_cursor;
    this.olderButton.hidden = !this.olderCursor;
    this.showEmpty();
    this.scrollToEnd();
    this.loaded = true;
    this.olderObserver.observe(this.topSentinel);

    // The reply being written is not listed until it ends, and every turn
    // ends with one: a question without a reply means a turn is in flight.
    const newest = page.items[page.items.length - 1];
    if (newest && newest.role === "user") this.attach();
    this.connectSocket();
    this.setTree(this.treePreference(), false);
  }

  showTitle() {
    this.heading.textContent = this.conversation.title;
    document.title = `${this.conversation.title} · Confab`;
  }

  showEmpty() {
    const none = this.list.children.length === 0;
    this.empty.hidden = !none;
    if (!none) return;
    const parts = [el("p", { textContent: `No messages yet. Say something to ${this.agentName || "the agent"}.` })];
    if (this.examples?.length) {
      const ideas = el("div", { className: "examples" }, el("span", { textContent: "Try:" }));
      for (const example of this.examples) {
        const button = el("button", { type: "button", className: "example", textContent: example });
        button.addEventListener("click", () => {
          this.input.value = example;
          this.input.focus();
        });
        ideas.append(button);
      }
      parts.push(ideas);
    }
    this.empty.replaceChildren(...parts);
  }

  async loadOlder() {
    if (this.loadingOlder || !this.olderCursor) return;
    this.loadingOlder = true;
    this.olderButton.disabled = true;
    try {
      const page = await this.api.messages(this.id, { beforeSeq: this.olderCursor, limit: PAGE });
      if (this.controller.signal.aborted) return;
      const fromBottom = this.scroller.scrollHeight - this.scroller.scrollTop;
      const fragment = document.createDocumentFragment();
      for (const message of page.items) {
        if (!this.views.has(message.id)) fragment.append(this.view(recordOf(message)).el);
      }
      this.list.prepend(fragment);
      // The messages in view stay where they were.
      this.scroller.scrollTop = this.scroller.scrollHeight - fromBottom;
      this.olderCursor = page.next_cursor;
      this.olderButton.hidden = !this.olderCursor;
    } catch (failure) {
      this.showError(`Could not load older messages: ${failure.message}`);
    } finally {
      this.loadingOlder = false;
      this.olderButton.disabled = false;
    }
  }

  /** A view for `record`, known by its id once it has one. */
  view(record) {
    const view = new MessageView(record, this.agentName || "Agent");
    if (record.id) this.views.set(record.id, view);
    const render = view.render.bind(view);
    view.render = () => {
      render();
      if (this.follow) this.scrollToEnd();
    };
    return view;
  }

  /** Puts `view` in `seq` order; one without a seq yet (being written) goes last. */
  place(view) {
    const seq = view.record.seq;
    if (seq == null) {
      this.list.append(view.el);
      return;
    }
    for (const li of this.list.children) {
      const other = this.views.get(li.dataset.id);
      const otherSeq = other?.record.seq;
      if (otherSeq == null || otherSeq > seq) {
        this.list.insertBefore(view.el, li);
        return;
      }
    }
    this.list.append(view.el);
  }

  /** Adds the newest messages this tab has not seen (another tab's question). */
  async syncTail() {
    let page;
    try {
      page = await this.api.messages(this.id, { limit: 10 });
    } catch {
      return;
    }
    if (this.controller.signal.aborted) return;
    for (const message of page.items) {
      const known = this.views.get(message.id);
      if (known) {
        known.record.seq = message.seq;
        continue;
      }
      const view = this.view(recordOf(message));
      this.place(view);
    }
    this.showEmpty();
    if (this.follow) this.scrollToEnd();
  }

  scrollToEnd() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
  }

  showError(text) {
    this.error.textContent = text;
    this.error.hidden = !text;
  }

  // --- turns -----------------------------------------------------------------------

  setStreaming(on) {
    this.sendButton.disabled = on;
    this.stopButton.hidden = !on;
    this.stopButton.disabled = false;
    this.el.classList.toggle("streaming", on);
  }

  async send() {
    // Enter pressed while the conversation is still loading sends once it has.
    if (!this.conversation) {
      if (this.waitingToSend) return;
      this.waitingToSend = true;
      await this.ready;
      this.waitingToSend = false;
      if (!this.conversation) return;
    }
    const text = this.input.value;
    if (!text.trim() || this.turn) return;
    this.showError("");
    const firstMessage = this.list.children.length === 0;
    const question = this.view({ ...recordOf({ role: "user", content: text, status: "sending" }), id: null });
    this.list.append(question.el);
    this.showEmpty();
    this.follow = true;
    this.scrollToEnd();
    this.input.value = "";
    const turn = { controller: new AbortController(), own: true, question, lastEventId: null };
    this.turn = turn;
    this.setStreaming(true);
    const signal = AbortSignal.any([this.controller.signal, turn.controller.signal]);
    let response;
    try {
      response = await this.api.sendMessage(this.id, text, signal);
    } catch (failure) {
      if (signal.aborted) return;
      question.el.remove();
      this.showEmpty();
      if (!this.input.value) this.input.value = text;
      this.showError(failureText(failure));
      this.turn = null;
      this.setStreaming(false);
      // Another tab's reply is being written: show it.
      if (failure.code === "turn_in_flight") this.attach();
      return;
    }
    question.record.status = "complete";
    question.render();
    if (firstMessage && this.conversation.title === UNTITLED) this.nameAfter(text);
    await this.consume(turn, response, signal);
  }

  /** A conversation still "New conversation" is named after its first message. */
  async nameAfter(text) {
    try {
      this.conversation = { ...this.conversation, ...(await this.api.renameConversation(this.id, titleFrom(text))) };
      this.showTitle();
      this.onActivity?.(this.conversation);
    } catch {
      // It keeps its title; the person can rename it.
    }
  }

  /** Reads the turn in flight from its start (a reload, another tab's turn). */
  async attach() {
    if (this.turn || this.controller.signal.aborted) return;
    const turn = { controller: new AbortController(), own: false, lastEventId: 0 };
    this.turn = turn;
    this.setStreaming(true);
    const signal = AbortSignal.any([this.controller.signal, turn.controller.signal]);
    let response;
    try {
      response = await this.api.followTurn(this.id, 0, signal);
    } catch (failure) {
      if (signal.aborted) return;
      this.turn = null;
      this.setStreaming(false);
      if (failure.status !== 404) this.showError(`Could not follow the reply: ${failure.message}`);
      return;
    }
    await this.consume(turn, response, signal);
  }

  async consume(turn, firstResponse, signal) {
    let response = firstResponse;
    let tries = 0;
    while (!turn.finished && !signal.aborted) {
      if (response) {
        try {
          await readEvents(response, (event) => this.event(turn, event), signal);
        } catch {
          // The connection dropped; re-attach below.
        }
        response = null;
        if (turn.finished || signal.aborted) break;
      }
      tries += 1;
      if (tries > REATTACH_TRIES) {
        if (turn.view) {
          turn.view.record.error = "The connection to Confab was lost. Reload the page to see the reply.";
          turn.view.render();
        }
        break;
      }
      await sleep(REATTACH_WAIT_MS * 2 ** (tries - 1), signal);
      if (signal.aborted) break;
      try {
        response = await this.api.followTurn(this.id, turn.lastEventId ?? 0, signal);
      } catch (failure) {
        // No turn to follow any more and nothing to replay: the reply is
        // as the list will show it.
        if (failure.status === 404) break;
      }
    }
    if (signal.aborted && this.controller.signal.aborted) return;
    if (this.turn === turn) {
      this.turn = null;
      this.setStreaming(false);
    }
    if (turn.finished) this.refreshSummary();
  }

  /** One event of a turn (DESIGN §7). */
  event(turn, { id, data }) {
    let event;
    try {
      event = JSON.parse(data);
    } catch {
      return;
    }
    if (id !== null && id !== "" && Number.isFinite(Number(id))) turn.lastEventId = Number(id);
    if (event.type === "message_start") {
      this.start(turn, event);
      return;
    }
    const view = turn.view;
    if (!view) return;
    const r = view.record;
    switch (event.type) {
      case "text":
        r.content += event.text || "";
        r.retry = null;
        this.announcer.add(event.text || "");
        view.renderSoon();
        break;
      case "reasoning":
        r.reasoning.push(event.text || "");
        r.retry = null;
        view.renderSoon();
        break;
      case "data":
        r.data.push(event.data);
        view.renderSoon();
        break;
      case "retry":
        r.retry = event;
        view.renderSoon();
        break;
      case "error":
        r.error = event.error?.message || "The agent failed.";
        view.renderSoon();
        break;
      case "done":
        r.status = event.status || "complete";
        r.tokenUsage = event.token_usage || null;
        r.retry = null;
        view.dispose();
        view.render();
        turn.finished = true;
        this.announcer.finish(
          r.status === "complete" ? "" : `(reply ${r.status}${r.error ? `: ${r.error}` : ""})`,
        );
        break;
      default:
        // tree_update: the tree panel follows the socket.
        break;
    }
  }

  start(turn, event) {
    let view = this.views.get(event.message_id);
    if (!view) {
      view = this.view({ ...recordOf({ id: event.message_id, role: "assistant", status: "streaming" }) });
      this.place(view);
    }
    Object.assign(view.record, { content: "", reasoning: [], data: [], error: null, retry: null, tokenUsage: null, status: "streaming" });
    view.dispose();
    view.render();
    turn.view = view;
    this.showEmpty();
    this.announcer.start();
    if (turn.question && !turn.question.record.id) {
      turn.question.record.id = event.user_message_id;
      this.views.set(event.user_message_id, turn.question);
      turn.question.render();
    } else if (event.user_message_id && !this.views.has(event.user_message_id)) {
      this.syncTail();
    }
  }

  async stop() {
    if (!this.turn) return;
    this.stopButton.disabled = true;
    try {
      await this.api.cancelTurn(this.id);
    } catch (failure) {
      // 409: the reply ended meanwhile; nothing to stop.
      if (failure.status !== 409) this.showError(`Could not stop the reply: ${failure.message}`);
      this.stopButton.disabled = false;
    }
  }

  async refreshSummary() {
    try {
      const conversation = await this.api.conversation(this.id);
      if (this.controller.signal.aborted) return;
      this.conversation = conversation;
      this.onActivity?.(conversation);
    } catch {
      // The sidebar stays as it was.
    }
  }

  /** The title changed elsewhere (the sidebar's rename). */
  renamed(conversation) {
    if (!this.conversation || conversation.id !== this.id) return;
    this.conversation = { ...this.conversation, title: conversation.title };
    this.showTitle();
  }

  // --- the socket and the tree panel -----------------------------------------------

  async connectSocket() {
    let ChatSocket;
    try {
      ({ ChatSocket } = await import("../chat-socket.js"));
    } catch (error) {
      console.warn("chat-socket.js is not available: turns started elsewhere are not followed live", error);
      return;
    }
    if (this.controller.signal.aborted) return;
    const socket = new ChatSocket(this.id);
    this.socket = socket;
    // Handlers get (data, frame); a whole frame is read too, to be safe.
    const payload = (data) => (data && typeof data.data === "object" && data.data ? data.data : data) || {};
    const begun = () => {
      if (this.socketTurnOpen) return;
      this.socketTurnOpen = true;
      if (!this.turn) this.attach();
    };
    socket.on("assistant_response", (frame) => {
      const data = payload(frame);
      if (data.chunk) {
        begun();
        return;
      }
      this.socketTurnOpen = false;
      const known = data.message_id && this.views.get(data.message_id);
      if (!this.turn && data.message_id && (!known || known.record.status === "streaming")) this.attach();
    });
    socket.on("reasoning", begun);
    // Back after the connection dropped: a turn may have begun (or ended)
    // unseen meanwhile.
    let opened = 0;
    socket.on("open", () => {
      opened += 1;
      if (opened > 1) this.resync();
    });
  }

  /** Catches up with the newest messages, and with a turn in flight. */
  async resync() {
    await this.syncTail();
    if (this.turn || this.controller.signal.aborted) return;
    const last = this.list.lastElementChild;
    const newest = last && this.views.get(last.dataset.id);
    if (newest && newest.record.role === "user") this.attach();
  }

  treePreference() {
    const saved = localStorage.getItem(TREE_PREFERENCE);
    const wide = matchMedia(WIDE).matches;
    // On a wide screen the panel is beside the chat unless it was closed;
    // on a narrow one it would cover the chat, so it starts closed.
    return wide ? saved !== "closed" : false;
  }

  setTree(open, byHand) {
    this.treePanel.hidden = !open;
    this.treeToggle.setAttribute("aria-expanded", String(open));
    this.el.classList.toggle("tree-open", open);
    if (byHand && matchMedia(WIDE).matches) localStorage.setItem(TREE_PREFERENCE, open ? "open" : "closed");
    if (open && !this.treeMounted) this.mountTree();
  }

  async mountTree() {
    this.treeMounted = true;
    this.treePanel.replaceChildren(el("p", { className: "hint", textContent: "Loading the tree…" }));
    try {
      const { mountTree } = await import("./tree.js");
      // The socket may still be on its way.
      for (let i = 0; !this.socket && i < 50 && !this.controller.signal.aborted; i += 1) await sleep(100, this.controller.signal);
      if (this.controller.signal.aborted) return;
      if (!this.socket) throw new Error("no chat socket");
      this.treePanel.replaceChildren();
      this.treeUnmount = mountTree(this.treePanel, { api: this.api, conversationId: this.id, socket: this.socket });
    } catch (error) {
      if (this.controller.signal.aborted) return;
      console.warn("the tree view is not available", error);
      this.treePanel.replaceChildren(
        el("h3", { textContent: "Tree" }),
        el("p", { className: "hint", textContent: "The tree view is not available in this build of Confab." }),
      );
    }
  }

  focus() {
    const narrow = !matchMedia("(min-width: 700px)").matches;
    (narrow || this.form.hidden ? this.heading : this.input).focus({ preventScroll: true });
  }

  unmount() {
    this.controller.abort();
    this.turn?.controller.abort();
    this.olderObserver.disconnect();
    this.announcer.dispose();
    for (const view of this.views.values()) view.dispose();
    try {
      this.treeUnmount?.();
    } catch (error) {
      console.error(error);
    }
    this.socket?.close();
    this.el.remove();
  }
}
