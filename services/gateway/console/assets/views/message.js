// One message of a conversation as the chat shows it: who wrote it, its
// text as safe Markdown, the agent's reasoning steps (collapsible), a
// retry notice, the error a failed turn ended with, structured data parts,
// its status when it is not complete, and the tokens it used.
//
// Selectors the browser tests rely on: `li.message` with `data-role`
// (user|assistant), `data-status` (streaming|complete|incomplete|canceled|
// failed|interrupted|sending) and `data-id`; `.message-body` (the text),
// `.message-status`, `.usage`, `.retry-note`, `.message-error`,
// `details.reasoning`.
import { renderMarkdown } from "../markdown.js";
import { textElement as el } from "../dom.js";

const STATUS_TEXT = {
  sending: "Sending…",
  streaming: "Writing…",
  incomplete: "Incomplete: the agent stopped before finishing",
  canceled: "Canceled",
  failed: "Failed: the agent gave no reply",
  interrupted: "Interrupted: Confab restarted during this reply",
};

const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

/** A message of the API (DESIGN §7) as the record the view keeps. */
export function recordOf(message) {
  const blocks = Array.isArray(message.content_blocks) ? message.content_blocks : [];
  return {
    id: message.id,
    seq: message.seq,
    role: message.role,
    content: message.content || "",
    status: message.status,
    tokenUsage: message.token_usage || null,
    createdAt: message.created_at,
    reasoning: [],
    data: blocks.filter((b) => b && b.type === "data").map((b) => b.data),
    error: null,
    retry: null,
  };
}

/** The element of one message, re-rendered from its record on demand. */
export class MessageView {
  constructor(record, agentName) {
    this.record = record;
    this.agentName = agentName;
    this.el = el("li", "message");
    this.frame = 0;
    this.render();
  }

  /** Renders at the next frame: a stream of small chunks costs one render per frame. */
  renderSoon() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  dispose() {
    if (this.frame) cancelAnimationFrame(this.frame);
    this.frame = 0;
  }

  render() {
    const r = this.record;
    const li = this.el;
    li.dataset.role = r.role;
    li.dataset.status = r.status;
    li.setAttribute("aria-busy", String(r.status === "streaming" || r.status === "sending"));
    if (r.id) li.dataset.id = r.id;
    li.classList.toggle("from-user", r.role === "user");
    li.classList.toggle("from-agent", r.role !== "user");

    const meta = el("div", "message-meta");
    meta.append(el("span", "author", r.role === "user" ? "You" : r.role === "system" ? "System" : this.agentName));
    const created = new Date(r.createdAt || "");
    if (!Number.isNaN(created.getTime())) {
      const time = el("time", null, timeFormat.format(created));
      time.dateTime = r.createdAt;
      meta.append(time);
    }
    if (STATUS_TEXT[r.status]) {
      meta.append(el("span", `message-status status-${r.status}`, STATUS_TEXT[r.status]));
    }
    const parts = [meta];

    if (r.reasoning.length) {
      const details = el("details", "reasoning");
      // Kept open or closed as the person left it across re-renders.
      details.open = this.reasoningOpen ?? false;
      details.addEventListener("toggle", () => {
        this.reasoningOpen = details.open;
      });
      const steps = r.reasoning.length === 1 ? "1 step" : `${r.reasoning.length} steps`;
      details.append(el("summary", null, `Reasoning (${steps})`));
      const list = el("ol");
      for (const step of r.reasoning) list.append(el("li", null, step));
      details.append(list);
      parts.push(details);
    }

    const body = el("div", "message-body markdown");
    if (r.content) body.append(renderMarkdown(r.content));
    else if (r.status === "streaming" || r.status === "sending") body.append(el("span", "typing", "…"));
    parts.push(body);

    if (r.retry) {
      const note = el("p", "retry-note");
      note.textContent = `The agent did not answer; retrying ${r.retry.attempt}/${r.retry.max_attempts}…`;
      parts.push(note);
    }
    if (r.error) parts.push(el("p", "message-error", r.error));
    if (r.data.length) {
      const details = el("details", "data-parts");
      details.append(el("summary", null, r.data.length === 1 ? "Structured data" : `Structured data (${r.data.length})`));
      for (const data of r.data) details.append(el("pre", null, JSON.stringify(data, null, 2)));
      parts.push(details);
    }
    if (r.tokenUsage) {
      const { input_tokens: input, output_tokens: output } = r.tokenUsage;
      parts.push(el("p", "usage", `Tokens: ${input} in · ${output} out`));
    }
    li.replaceChildren(...parts);
  }
}
