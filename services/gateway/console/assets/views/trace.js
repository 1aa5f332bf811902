// Live trace (issue 17 point 5, seed 000's TraceView): one agent's LLM
// calls as they happen, through `/ws/trace/{agent_id}` (DESIGN §10).
// Routes: /trace (pick an agent) and /trace/{agent_id}.
//
// Timeline. Events are grouped by call (`call_id`), newest call first; in a
// call, `llm.request`, `llm.tool_call`, `llm.response` and `llm.error` are a
// line each, and the call's `llm.delta`s are one line that counts them and
// shows the text they streamed. Each call shows its latency (request to
// response or error), the time to its first delta, and its tokens (from the
// response's `usage`).
//
// Continuity. Every event has a `seq` (one sequence over the whole proxy,
// so also increasing for one agent). The view applies an event only when
// its seq is past the last one applied, so a replayed event is never shown
// twice. The calls shown and the last seq applied are saved together in
// sessionStorage (per user and agent, so another account signing in on this
// tab sees nothing of them); after a reload the view shows them again and
// reconnects with `?since=<that seq>`: the server replays what came after
// it, then goes live, with no gap and no duplicate. A dropped connection is
// reopened the same way, with backoff. The first visit to an agent in a tab
// reads its history with GET /api/v1/traces (oldest first, page by page,
// keeping the latest calls) and then follows live from its last seq.
//
// Pause keeps receiving and buffers; nothing is dropped. A very long pause
// (more than BUFFER_LIMIT events waiting) closes the connection instead of
// growing without end, and Resume reconnects from the last seq received.
// Clear empties the timeline (and its saved copy) but keeps the last seq,
// so cleared events do not come back after a reload.
//
// Authentication: the gateway's HttpOnly cookie on a same-origin upgrade;
// while the console also has its access token in memory
// (`api.accessToken()`), that is appended as `?token=`, the fallback
// ChatSocket documents.
import { element as el, ensureViewStyles as ensureStyles } from "../dom.js";

/** Calls kept in the timeline (and in sessionStorage); older ones are in "LLM calls". */
const MAX_CALLS = 50;
/** Events a pause may hold before the connection is closed until Resume. */
const BUFFER_LIMIT = 20_000;
/** Events per page when reading history (the API's maximum). */
const HISTORY_PAGE = 1000;
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 30_000;
/** How often the saved copy is brought up to date while events flow. */
const SAVE_EVERY_MS = 400;

function clock(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
}

const ms = (from, to) => {
  const span = Date.parse(to) - Date.parse(from);
  return Number.isFinite(span) && span >= 0 ? span : null;
};

function formatMs(value) {
  if (value === null || value === undefined) return "";
  return value < 1000 ? `${value} ms` : `${(value / 1000).toFixed(2)} s`;
}

function storageKey(user, agentId) {
  const who = (user && (user.id || user.username)) || "anonymous";
  return `confab.trace.${who}.${agentId}`;
}

/** The call a new event starts. */
function newCall(event) {
  return {
    id: event.call_id,
    conversationId: event.conversation_id || null,
    startedAt: event.created_at,
    firstSeq: event.seq,
    lastSeq: event.seq,
    count: 0,
    request: null,
    requestAt: null,
    deltas: 0,
    firstDeltaAt: null,
    text: "",
    toolPieces: 0,
    toolCalls: [],
    response: null,
    error: null,
    endedAt: null,
  };
}

/** Folds one event into its call. */
function fold(call, event) {
  call.count += 1;
  call.lastSeq = event.seq;
  const data = event.data && typeof event.data === "object" ? event.data : {};
  switch (event.kind) {
    case "llm.request":
      call.request = data;
      call.requestAt = event.created_at;
      call.startedAt = event.created_at;
      break;
    case "llm.delta":
      call.deltas += 1;
      if (!call.firstDeltaAt) call.firstDeltaAt = event.created_at;
      if (typeof data.content === "string") call.text += data.content;
      if (Array.isArray(data.tool_calls)) call.toolPieces += data.tool_calls.length;
      break;
    case "llm.tool_call":
      call.toolCalls.push(data);
      break;
    case "llm.response":
      call.response = data;
      call.endedAt = event.created_at;
      break;
    case "llm.error":
      call.error = data;
      call.endedAt = event.created_at;
      break;
    default:
      break;
  }
}

function usageOf(call) {
  const source = call.response || (call.error && call.error.partial) || null;
  const usage = source && source.usage;
  if (!usage || typeof usage !== "object") return null;
  const input = usage.prompt_tokens ?? usage.input_tokens;
  const output = usage.completion_tokens ?? usage.output_tokens;
  if (input === undefined && output === undefined) return null;
  return { input: input ?? 0, output: output ?? 0 };
}

function statusOf(call) {
  if (call.error) return "error";
  if (call.response) return "done";
  return "streaming";
}

export function mount(root, ctx) {
  ensureStyles();
  const { api, user } = ctx;
  const tokenGetter = typeof api.accessToken === "function" ? () => api.accessToken() : null;
  const state = {
    agentId: null,
    calls: new Map(), // call_id → call, in order of first event
    lastSeq: 0, // last seq applied (shown)
    received: 0, // last seq received (applied or buffered)
    buffer: [],
    paused: false,
    held: false, // the connection was closed because the pause buffer is full
    ws: null,
    live: false,
    attempt: 0,
    retryTimer: null,
    saveTimer: null,
    dirty: new Set(),
    open: new Set(), // the <details> open, by call and name
    frame: null,
    unmounted: false,
    generation: 0, // bumped on each agent switch, so late answers are ignored
  };

  const agentSelect = el("select", { id: "trace-agent", name: "agent" },
    el("option", { value: "", text: "Choose an agent…" }));
  const pauseButton = el("button", { type: "button", className: "trace-pause", "aria-pressed": "false", text: "Pause", disabled: true });
  const clearButton = el("button", { type: "button", className: "trace-clear", text: "Clear", disabled: true });
  const status = el("p", { className: "trace-status", role: "status", "aria-live": "polite", "data-state": "idle" });
  const summary = el("p", { className: "trace-summary", "data-events": "0", "data-calls": "0" });
  const announcer = el("p", { className: "visually-hidden", "aria-live": "polite" });
  const list = el("ol", { className: "trace-calls", "aria-label": "LLM calls, newest first" });
  const empty = el("p", { className: "trace-empty", text: "Choose an agent to follow its LLM calls." });
  const section = el("section", { className: "trace-view", "aria-labelledby": "trace-title" },
    el("header", { className: "views-header" },
      el("h2", { id: "trace-title", text: "Live trace" }),
      el("div", { className: "trace-controls" },
        el("label", { for: "trace-agent", text: "Agent" }),
        agentSelect,
        pauseButton,
        clearButton)),
    status,
    summary,
    announcer,
    empty,
    list);
  root.append(section);

  function setStatus(kind, text) {
    status.dataset.state = kind;
    status.textContent = text;
  }

  // --- saved state ---
  function save() {
    clearTimeout(state.saveTimer);
    state.saveTimer = null;
    if (!state.agentId) return;
    let calls = [...state.calls.values()];
    const key = storageKey(user, state.agentId);
    // Shrink until it fits: the seq alone always does.
    for (;;) {
      try {
        sessionStorage.setItem(key, JSON.stringify({ v: 1, lastSeq: state.lastSeq, calls }));
        return;
      } catch {
        if (calls.length === 0) return;
        calls = calls.slice(Math.ceil(calls.length / 2));
      }
    }
  }

  function saveSoon() {
    if (!state.saveTimer) state.saveTimer = setTimeout(save, SAVE_EVERY_MS);
  }

  function restore(agentId) {
    try {
      const saved = JSON.parse(sessionStorage.getItem(storageKey(user, agentId)) || "null");
      if (saved && saved.v === 1 && Number.isInteger(saved.lastSeq) && Array.isArray(saved.calls)) return saved;
    } catch {
      // A damaged copy is as good as none.
    }
    return null;
  }

  // --- events ---
  function apply(event) {
    if (!event || !Number.isInteger(event.seq) || event.seq <= state.lastSeq) return;
    state.lastSeq = event.seq;
    let call = state.calls.get(event.call_id);
    if (!call) {
      call = newCall(event);
      state.calls.set(event.call_id, call);
      while (state.calls.size > MAX_CALLS) {
        const oldest = state.calls.keys().next().value;
        state.calls.delete(oldest);
        state.dirty.add(oldest);
      }
    }
    const ended = call.endedAt;
    fold(call, event);
    if (!ended && call.endedAt && state.live) announce(call);
    state.dirty.add(call.id);
    scheduleRender();
    saveSoon();
  }

  function receive(event) {
    if (!event || !Number.isInteger(event.seq) || event.seq <= state.received) return;
    state.received = event.seq;
    if (!state.paused) {
      apply(event);
      return;
    }
    state.buffer.push(event);
    if (state.buffer.length >= BUFFER_LIMIT && !state.held) {
      state.held = true;
      disconnect();
    }
    showPaused();
  }

  function announce(call) {
    const usage = usageOf(call);
    const latency = formatMs(ms(call.requestAt || call.startedAt, call.endedAt));
    const words = call.error ? "failed" : "finished";
    announcer.textContent = `${state.agentId}: a call ${words}${latency ? ` in ${latency}` : ""}` +
      (usage ? `, ${usage.input} tokens in, ${usage.output} out.` : ".");
  }

  // --- rendering ---
  function scheduleRender() {
    if (state.frame === null) state.frame = requestAnimationFrame(flush);
  }

  function flush() {
    state.frame = null;
    for (const id of state.dirty) {
      const call = state.calls.get(id);
      const existing = list.querySelector(`li[data-call-id="${CSS.escape(id)}"]`);
      if (!call) {
        if (existing) existing.remove();
        continue;
      }
      const card = renderCall(call, existing);
      if (!existing) list.prepend(card);
    }
    state.dirty.clear();
    showSummary();
  }

  function renderAll() {
    list.replaceChildren(...[...state.calls.values()].reverse().map((call) => renderCall(call, null)));
    state.dirty.clear();
    showSummary();
  }

  function showSummary() {
    const calls = [...state.calls.values()];
    const events = calls.reduce((sum, call) => sum + call.count, 0);
    summary.dataset.events = String(events);
    summary.dataset.calls = String(calls.length);
    summary.dataset.lastSeq = String(state.lastSeq);
    summary.textContent = state.agentId
      ? `${events} event${events === 1 ? "" : "s"} in ${calls.length} call${calls.length === 1 ? "" : "s"} · last seq ${state.lastSeq}`
      : "";
    empty.hidden = calls.length > 0;
    if (state.agentId && calls.length === 0) {
      empty.textContent = `No LLM calls of ${state.agentId} yet. Chat with it and they appear here as they happen.`;
    }
    clearButton.disabled = !state.agentId || calls.length === 0;
  }

  function eventLine(kind, label, ...content) {
    return el("li", { className: `trace-event trace-${kind.replace("llm.", "").replace("_", "-")}`, "data-kind": kind },
      el("span", { className: "trace-kind", text: kind }),
      el("span", { className: "trace-what" }, label),
      ...content);
  }

  /**
   * A <details> whose JSON is built when opened; it stays open when its
   * call's card is rebuilt by a later event.
   */
  function jsonDetails(callId, summaryText, value) {
    const key = `${callId}\n${summaryText}`;
    const pre = el("pre", { className: "views-json" });
    const details = el("details", { className: "trace-json" }, el("summary", { text: summaryText }), pre);
    if (state.open.has(key)) {
      details.open = true;
      pre.textContent = JSON.stringify(value, null, 2);
    }
    details.addEventListener("toggle", () => {
      if (details.open) {
        state.open.add(key);
        if (!pre.textContent) pre.textContent = JSON.stringify(value, null, 2);
      } else {
        state.open.delete(key);
      }
    });
    return details;
  }

  function renderCall(call, existing) {
    const card = existing || el("li", { className: "trace-call", "data-call-id": call.id });
    const callStatus = statusOf(call);
    const usage = usageOf(call);
    const latency = call.endedAt ? ms(call.requestAt || call.startedAt, call.endedAt) : null;
    const firstDelta = call.firstDeltaAt ? ms(call.requestAt || call.startedAt, call.firstDeltaAt) : null;
    card.dataset.events = String(call.count);
    card.dataset.status = callStatus;
    card.dataset.firstSeq = String(call.firstSeq);
    card.dataset.lastSeq = String(call.lastSeq);
    const model = (call.request && typeof call.request.model === "string" && call.request.model) || "model ?";
    const facts = el("dl", { className: "trace-facts" });
    const fact = (name, value, cls) => {
      if (value === "" || value === null || value === undefined) return;
      facts.append(el("div", { className: cls || null }, el("dt", { text: name }), el("dd", { text: value })));
    };
    fact("Latency", formatMs(latency), "trace-latency");
    fact("First delta", formatMs(firstDelta), "trace-ttft");
    fact("Tokens", usage ? `${usage.input} in · ${usage.output} out` : "", "trace-tokens");
    fact("Events", `${call.count} (seq ${call.firstSeq}–${call.lastSeq})`, "trace-count");

    const head = el("div", { className: "trace-call-head" },
      el("time", { dateTime: call.startedAt, text: clock(call.startedAt) }),
      el("strong", { className: "trace-model", text: model }),
      el("span", { className: `views-badge views-badge-${callStatus}`, text: callStatus === "streaming" ? "in progress" : callStatus }),
      el("a", {
        href: `/calls/${encodeURIComponent(call.id)}`,
        className: "trace-open",
        text: "Details",
        "aria-label": `Details of call ${call.id}`,
        onclick: (event) => {
          if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
          event.preventDefault();
          ctx.navigate(`/calls/${encodeURIComponent(call.id)}`);
        },
      }));

    const lines = el("ul", { className: "trace-events" });
    if (call.request) {
      const messages = Array.isArray(call.request.messages) ? call.request.messages.length : 0;
      const tools = Array.isArray(call.request.tools)
        ? call.request.tools.map((t) => (t && t.function && t.function.name) || "?").join(", ")
        : "";
      const words = [`${messages} message${messages === 1 ? "" : "s"}`];
      if (tools) words.push(`tools: ${tools}`);
      words.push(call.request.stream ? "streamed" : "not streamed");
      lines.append(eventLine("llm.request", words.join(" · "), jsonDetails(call.id, "Request", call.request)));
    }
    if (call.deltas) {
      const words = `×${call.deltas}${call.toolPieces ? ` (${call.toolPieces} tool-call piece${call.toolPieces === 1 ? "" : "s"})` : ""}`;
      lines.append(eventLine("llm.delta", words, call.text ? el("p", { className: "trace-text", text: call.text }) : null));
    }
    for (const tool of call.toolCalls) {
      const fn = (tool && tool.function) || {};
      lines.append(eventLine("llm.tool_call", `${fn.name || "?"}(${fn.arguments || ""})`));
    }
    if (call.response) {
      const words = [call.response.finish_reason ? `finish: ${call.response.finish_reason}` : "finished"];
      const text = !call.deltas && typeof call.response.content === "string" && call.response.content
        ? el("p", { className: "trace-text", text: call.response.content })
        : null;
      lines.append(eventLine("llm.response", words.join(" · "), text, jsonDetails(call.id, "Response", call.response)));
    }
    if (call.error) {
      const message = typeof call.error.error === "string" ? call.error.error : JSON.stringify(call.error.error ?? call.error);
      lines.append(eventLine("llm.error", message));
    }
    card.replaceChildren(head, facts, lines);
    return card;
  }

  // --- connection ---
  function disconnect() {
    clearTimeout(state.retryTimer);
    state.retryTimer = null;
    const ws = state.ws;
    state.ws = null;
    state.live = false;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      ws.close(1000, "closed by the page");
    }
  }

  function connect() {
    disconnect();
    if (!state.agentId || state.unmounted || state.held) return;
    const generation = state.generation;
    const query = new URLSearchParams({ since: String(state.received) });
    const token = tokenGetter ? tokenGetter() : null;
    if (token) query.set("token", token);
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const url = `${scheme}//${location.host}/ws/trace/${encodeURIComponent(state.agentId)}?${query}`;
    setStatus("connecting", state.attempt ? "Reconnecting…" : "Connecting…");
    let ws;
    try {
      ws = new WebSocket(url);
    } catch {
      retry();
      return;
    }
    state.ws = ws;
    let opened = 0;
    ws.onopen = () => {
      opened = Date.now();
      setStatus("replaying", `Catching up from seq ${state.received}…`);
    };
    ws.onmessage = (message) => {
      if (generation !== state.generation) return;
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        return;
      }
      if (frame.type === "trace") receive(frame.event);
      else if (frame.type === "live") {
        state.live = true;
        state.attempt = 0;
        if (!state.paused) setStatus("live", `Live: following ${state.agentId}`);
        else showPaused();
      }
    };
    ws.onclose = (event) => {
      if (state.ws !== ws) return;
      state.ws = null;
      state.live = false;
      if (opened && Date.now() - opened > 10_000) state.attempt = 0;
      retry(event.reason);
    };
    ws.onerror = () => {};
  }

  function retry(reason) {
    if (state.unmounted || !state.agentId || state.held) return;
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** state.attempt);
    const wait = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
    state.attempt += 1;
    const why = reason ? ` (${reason})` : "";
    setStatus("offline", `Disconnected${why}; reconnecting in ${Math.ceil(wait / 1000)} s…`);
    state.retryTimer = setTimeout(connect, wait);
  }

  // --- history ---
  async function readHistory(agentId, generation) {
    setStatus("loading", `Reading ${agentId}'s recent calls…`);
    let since = 0;
    let events = [];
    for (;;) {
      const query = new URLSearchParams({ agent_id: agentId, limit: String(HISTORY_PAGE), since: String(since) });
      const page = await api.request("GET", `/api/v1/traces?${query}`);
      if (generation !== state.generation) return null;
      const items = Array.isArray(page.items) ? page.items : [];
      events = events.concat(items);
      // Only the events of the latest calls are kept while reading on.
      if (events.length > HISTORY_PAGE * 4) events = keepLatestCalls(events);
      if (!page.next_cursor || items.length === 0) break;
      since = Number(page.next_cursor);
      if (!Number.isFinite(since)) break;
    }
    return events;
  }

  function keepLatestCalls(events) {
    const calls = [];
    const seen = new Set();
    for (let i = events.length - 1; i >= 0 && calls.length < MAX_CALLS; i -= 1) {
      if (!seen.has(events[i].call_id)) {
        seen.add(events[i].call_id);
        calls.push(events[i].call_id);
      }
    }
    return events.filter((e) => seen.has(e.call_id));
  }

  // --- agent choice ---
  async function follow(agentId) {
    if (state.agentId) save();
    disconnect();
    state.generation += 1;
    const generation = state.generation;
    Object.assign(state, {
      agentId: agentId || null,
      calls: new Map(),
      lastSeq: 0,
      received: 0,
      buffer: [],
      held: false,
      attempt: 0,
    });
    state.dirty.clear();
    pauseButton.disabled = !agentId;
    if (agentSelect.value !== (agentId || "")) agentSelect.value = agentId || "";
    renderAll();
    if (!agentId) {
      setStatus("idle", "");
      return;
    }
    const saved = restore(agentId);
    if (saved) {
      for (const call of saved.calls) state.calls.set(call.id, call);
      state.lastSeq = saved.lastSeq;
      state.received = saved.lastSeq;
      renderAll();
      connect();
      return;
    }
    try {
      const events = await readHistory(agentId, generation);
      if (events === null || state.unmounted) return;
      const latest = keepLatestCalls(events);
      for (const event of latest) apply(event);
      // The seq the history ends at, even when the calls kept start later.
      const last = events.length ? events[events.length - 1].seq : 0;
      state.lastSeq = Math.max(state.lastSeq, last);
      state.received = state.lastSeq;
      renderAll();
      save();
    } catch (error) {
      if (generation !== state.generation) return;
      setStatus("offline", `The history could not be read (${error.message || error}); following live events only.`);
    }
    if (generation === state.generation) connect();
  }

  function showPaused() {
    if (!state.paused) return;
    const waiting = state.buffer.length;
    const held = state.held ? " The connection is closed until you resume (nothing is lost)." : "";
    setStatus("paused", `Paused: ${waiting} event${waiting === 1 ? "" : "s"} waiting.${held}`);
  }

  pauseButton.addEventListener("click", () => {
    state.paused = !state.paused;
    pauseButton.setAttribute("aria-pressed", String(state.paused));
    pauseButton.textContent = state.paused ? "Resume" : "Pause";
    if (state.paused) {
      showPaused();
      return;
    }
    const waiting = state.buffer.splice(0);
    waiting.forEach(apply);
    if (state.held) {
      state.held = false;
      connect();
    } else if (state.live) {
      setStatus("live", `Live: following ${state.agentId}`);
    }
  });

  clearButton.addEventListener("click", () => {
    for (const id of state.calls.keys()) state.dirty.add(id);
    state.calls.clear();
    renderAll();
    save();
    announcer.textContent = "Timeline cleared.";
  });

  agentSelect.addEventListener("change", () => {
    const agentId = agentSelect.value;
    // The shell routes it and calls `update`, which follows the agent.
    ctx.navigate(agentId ? `/trace/${encodeURIComponent(agentId)}` : "/trace");
  });

  const onPageHide = () => save();
  window.addEventListener("pagehide", onPageHide);

  // The agents to choose from; the one in the route is followed at once.
  const agentOf = (params) => (params && (params.agentId || params.agent_id)) || null;
  const wanted = agentOf(ctx.params);
  api.request("GET", "/api/v1/agents")
    .then((page) => {
      if (state.unmounted) return;
      const items = Array.isArray(page && page.items) ? page.items : [];
      for (const agent of items) {
        const name = (agent.card && agent.card.name) || agent.id;
        agentSelect.append(el("option", { value: agent.id, text: name === agent.id ? agent.id : `${name} (${agent.id})` }));
      }
      if (wanted && !items.some((a) => a.id === wanted)) {
        agentSelect.append(el("option", { value: wanted, text: wanted }));
      }
      agentSelect.value = state.agentId || wanted || "";
    })
    .catch((error) => {
      if (state.unmounted) return;
      setStatus("offline", `The agents could not be listed: ${error.message || error}`);
      if (wanted) agentSelect.append(el("option", { value: wanted, text: wanted }));
      agentSelect.value = state.agentId || wanted || "";
    });
  if (wanted) follow(wanted);
  else showSummary();

  return {
    unmount() {
      save();
      state.unmounted = true;
      disconnect();
      clearTimeout(state.saveTimer);
      if (state.frame !== null) cancelAnimationFrame(state.frame);
      window.removeEventListener("pagehide", onPageHide);
      section.remove();
    },
    /** /trace/{agent_id} for another agent (the select, back, forward): followed in place. */
    update(params) {
      const agentId = agentOf(params);
      if (agentId !== state.agentId) {
        if (agentId && ![...agentSelect.options].some((o) => o.value === agentId)) {
          agentSelect.append(el("option", { value: agentId, text: agentId }));
        }
        follow(agentId);
      }
      return true;
    },
  };
}
