// LLM calls (issue 17 point 6): the caller's calls recorded by
// llm-proxy-service (GET /api/v1/llm-calls, newest first, paged by
// `next_cursor`), and one call with its request, response and tool calls
// (GET /api/v1/llm-calls/{id}). Routes: /calls and /calls/{call_id}.
//
// The table can be narrowed to one agent (the API's `agent_id`); "Load
// more" fetches the next page. A row's time is a link to the call, so a
// call has an address that can be opened in a new tab or shared.
import { element as el, ensureViewStyles as ensureStyles } from "../dom.js";

const PAGE = 50;

function when(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso || "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

function formatMs(value) {
  if (value === null || value === undefined || value === "") return "";
  const n = Number(value);
  if (!Number.isFinite(n)) return "";
  return n < 1000 ? `${n} ms` : `${(n / 1000).toFixed(2)} s`;
}

function tokens(usage) {
  if (!usage || (usage.input_tokens == null && usage.output_tokens == null)) return "";
  return `${usage.input_tokens ?? 0} in · ${usage.output_tokens ?? 0} out`;
}

function explain(error) {
  if (error && error.status === 404) return "There is no such call, or it is not yours.";
  if (error && error.status === 429 && error.retryAfter) return `${error.message} (try again in ${error.retryAfter} s)`;
  return (error && error.message) || "Confab cannot be reached; try again.";
}

const pretty = (value) => (typeof value === "string" ? value : JSON.stringify(value, null, 2));

export function mount(root, ctx) {
  ensureStyles();
  const { api } = ctx;
  let unmounted = false;
  const section = el("section", { className: "calls-view", "aria-labelledby": "calls-title" });
  root.append(section);

  /** A link inside the console: the shell routes it (and calls `update`). */
  function link(path, text, attributes = {}) {
    return el("a", {
      href: path,
      text,
      ...attributes,
      onclick: (event) => {
        if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
        event.preventDefault();
        ctx.navigate(path);
      },
    });
  }

  /** After moving between the table and a call, the heading takes focus. */
  function focusHeading() {
    const heading = section.querySelector("h2");
    if (!heading) return;
    heading.tabIndex = -1;
    heading.focus({ preventScroll: true });
  }

  // --- the table ---
  function showList() {
    const agentSelect = el("select", { id: "calls-agent", name: "agent" }, el("option", { value: "", text: "All agents" }));
    const refresh = el("button", { type: "button", text: "Refresh" });
    const status = el("p", { className: "calls-status", role: "status", "aria-live": "polite" });
    const body = el("tbody");
    const table = el("table", { className: "calls-table" },
      el("caption", { className: "visually-hidden", text: "Your LLM calls, newest first" }),
      el("thead", {}, el("tr", {},
        ["Time", "Agent", "Model", "Status", "Latency", "Tokens"].map((h) => el("th", { scope: "col", text: h })))),
      body);
    const more = el("button", { type: "button", className: "calls-more", text: "Load more", hidden: true });
    section.replaceChildren(
      el("header", { className: "views-header" },
        el("h2", { id: "calls-title", text: "LLM calls" }),
        el("div", { className: "calls-controls" },
          el("label", { for: "calls-agent", text: "Agent" }), agentSelect, refresh)),
      status,
      el("div", { className: "table-scroll" }, table),
      more);

    let cursor = null;
    let loading = false;
    let generation = 0;

    function row(call) {
      const path = `/calls/${encodeURIComponent(call.id)}`;
      const cell = (label, ...content) => el("td", { "data-label": label }, ...content);
      return el("tr", { "data-call-id": call.id, "data-status": call.status },
        cell("Time", link(path, when(call.created_at), { "aria-label": `Call of ${when(call.created_at)}, ${call.model || ""}` })),
        cell("Agent", call.agent_id || "—"),
        cell("Model", call.model || "—"),
        cell("Status", el("span", { className: `views-badge views-badge-${call.status === "ok" ? "done" : "error"}`, text: call.status })),
        cell("Latency", formatMs(call.latency_ms)),
        cell("Tokens", tokens(call.usage)));
    }

    async function load(reset) {
      if (loading && !reset) return;
      generation += 1;
      const mine = generation;
      loading = true;
      if (reset) cursor = null;
      status.textContent = "Loading…";
      const query = new URLSearchParams({ limit: String(PAGE) });
      if (agentSelect.value) query.set("agent_id", agentSelect.value);
      if (cursor) query.set("cursor", cursor);
      try {
        const page = await api.request("GET", `/api/v1/llm-calls?${query}`);
        if (unmounted || mine !== generation) return;
        const items = Array.isArray(page.items) ? page.items : [];
        if (reset) body.replaceChildren();
        body.append(...items.map(row));
        cursor = page.next_cursor || null;
        more.hidden = !cursor;
        const shown = body.children.length;
        status.textContent = shown === 0
          ? "No LLM calls yet. Chat with an agent and its calls are listed here."
          : `${shown} call${shown === 1 ? "" : "s"}${cursor ? " (more below)" : ""}.`;
      } catch (error) {
        if (unmounted || mine !== generation) return;
        status.textContent = `The calls could not be read: ${explain(error)}`;
      } finally {
        if (mine === generation) loading = false;
      }
    }

    agentSelect.addEventListener("change", () => load(true));
    refresh.addEventListener("click", () => load(true));
    more.addEventListener("click", () => load(false));
    api.request("GET", "/api/v1/agents")
      .then((page) => {
        if (unmounted) return;
        for (const agent of (page && page.items) || []) {
          agentSelect.append(el("option", { value: agent.id, text: (agent.card && agent.card.name) || agent.id }));
        }
      })
      .catch(() => {});
    load(true);
  }

  // --- one call ---
  function showCall(id) {
    const status = el("p", { className: "calls-status", role: "status", "aria-live": "polite", text: "Loading…" });
    const content = el("div", { className: "call-detail" });
    section.replaceChildren(
      el("header", { className: "views-header" },
        el("h2", { id: "calls-title", text: "LLM call" }),
        link("/calls", "← All calls", { className: "back" })),
      status,
      content);
    api.request("GET", `/api/v1/llm-calls/${encodeURIComponent(id)}`)
      .then((call) => {
        if (unmounted) return;
        status.textContent = "";
        const facts = el("dl", { className: "call-facts" });
        const fact = (name, value) => {
          if (value === null || value === undefined || value === "") return;
          facts.append(el("div", {}, el("dt", { text: name }), el("dd", { text: String(value) })));
        };
        fact("Call", call.id);
        fact("Time", when(call.created_at));
        fact("Agent", call.agent_id);
        fact("Conversation", call.conversation_id);
        fact("Provider", call.provider);
        fact("Model", call.model);
        fact("Upstream model", call.upstream_model);
        fact("Streamed", call.stream ? "yes" : "no");
        fact("Status", call.status);
        fact("Error", call.error);
        fact("Attempts", call.attempts);
        fact("Latency", formatMs(call.latency_ms));
        fact("First chunk", formatMs(call.first_chunk_ms));
        fact("Tokens", tokens(call.usage));
        const block = (title, value, name) => el("section", { className: `call-part call-${name}`, "aria-label": title },
          el("h3", { text: title }),
          value === null || value === undefined
            ? el("p", { className: "views-muted", text: "None recorded." })
            : el("pre", { className: "views-json", tabindex: "0", text: pretty(value) }));
        const tools = Array.isArray(call.tool_calls) ? call.tool_calls : [];
        const toolList = tools.length
          ? el("ol", { className: "call-tools" }, tools.map((tool) => {
            let args = tool.arguments;
            try {
              args = JSON.parse(tool.arguments);
            } catch {
              // Arguments that are not JSON are shown as sent.
            }
            return el("li", {},
              el("p", {}, el("strong", { text: tool.name || "?" }), tool.id ? ` (${tool.id})` : ""),
              el("pre", { className: "views-json", tabindex: "0", text: pretty(args) }));
          }))
          : el("p", { className: "views-muted", text: "No tool calls." });
        content.replaceChildren(
          facts,
          block("Request", call.request, "request"),
          block("Response", call.response, "response"),
          el("section", { className: "call-part call-tool-calls", "aria-label": "Tool calls" }, el("h3", { text: `Tool calls (${tools.length})` }), toolList));
      })
      .catch((error) => {
        if (unmounted) return;
        status.textContent = explain(error);
      });
  }

  const callOf = (params) => (params && (params.callId || params.call_id)) || null;
  let shown = callOf(ctx.params);
  if (shown) showCall(shown);
  else showList();

  return {
    unmount() {
      unmounted = true;
      section.remove();
    },
    /** Another path of this view (/calls ↔ /calls/{id}): shown in place. */
    update(params) {
      const callId = callOf(params);
      if (callId !== shown) {
        shown = callId;
        if (callId) showCall(callId);
        else showList();
        focusHeading();
      }
      return true;
    },
  };
}
