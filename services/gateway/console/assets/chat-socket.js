// The console's side of `/ws/chat` in the envelope dialect (DESIGN §9): one
// socket for one conversation, on this page's origin.
//
//   const socket = new ChatSocket(conversationId);
//   const off = socket.on("assistant_response", (data, frame) => …);
//   socket.send("user_prompt", { prompt: "what is 2+3" });
//   socket.close();
//
// Server frames are `{type, data, session_id?, timestamp, error?}`; a handler
// gets `data` and the whole frame (an `error` frame's `data` carries the same
// `code` and `message` as its `error`). Two events are the socket's own:
// "open" ({attempt}) when a connection is up, and "close" ({code, reason,
// retryIn}) when it went down, `retryIn` being the milliseconds until the
// next attempt, or null when the socket will not reconnect (closed by the
// page, or refused for good). A handler of "*" gets every server frame as
// (type, data, frame).
//
// Authentication. A browser signed in to the console carries the gateway's
// HttpOnly `confab_access` cookie, which the gateway accepts on a same-origin
// WebSocket upgrade: no token travels in the URL. Fallback for API clients
// and pages without that cookie: pass a getter,
//   new ChatSocket(conversationId, { token: () => api.accessToken() }),
// and `?token=` is appended to each connection with the getter's value at
// that moment (a refreshed token is picked up on reconnect); a getter that
// returns nothing adds nothing.
//
// Reconnects. A dropped connection is reopened after 0.5 s, 1 s, 2 s, … up
// to 30 s (with jitter, so a restarted gateway is not hit by every tab at
// once); a connection that was up for a while starts the backoff again.
// With `?conversation_id=` the server answers each new connection with
// `session_ready` and `chat_history`, so views resynchronise from those.
// A close with 1008 (policy: the conversation is not the caller's, or the
// user has too many sockets open) is final: retrying cannot help.
//
// Heartbeat: a `ping` frame every 30 s (DESIGN §9); a connection that has
// answered nothing, not even the `pong`, 10 s later is taken for dead and
// reopened, without waiting for the browser to notice.

/** 30 s: the heartbeat DESIGN §9 asks clients for. */
const PING_MS = 30_000;
/** How long a ping may go unanswered before the connection is given up. */
const PONG_GRACE_MS = 10_000;
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 30_000;
/** A connection up this long resets the backoff. */
const STABLE_MS = 10_000;
/** Close codes after which reconnecting cannot succeed. */
const FINAL_CODES = new Set([1008]);

export class ChatSocket {
  /**
   * @param {string|null} conversationId attached on connect (`?conversation_id=`);
   *   null: the caller sends `init_session` itself after "open".
   * @param {{token?: () => (string|null|undefined)}} [options]
   */
  constructor(conversationId, options = {}) {
    this.conversationId = conversationId || null;
    this.token = typeof options.token === "function" ? options.token : null;
    this.handlers = new Map();
    this.ws = null;
    this.closed = false;
    this.attempt = 0;
    this.retryTimer = null;
    this.pingTimer = null;
    this.pongTimer = null;
    this.openedAt = 0;
    this.connect();
  }

  /** Whether a connection is up right now. */
  get connected() {
    return Boolean(this.ws && this.ws.readyState === WebSocket.OPEN);
  }

  /** Calls `fn(data, frame)` for each frame of `type`; returns the unsubscribe. */
  on(type, fn) {
    if (!this.handlers.has(type)) this.handlers.set(type, new Set());
    this.handlers.get(type).add(fn);
    return () => {
      const set = this.handlers.get(type);
      if (set) set.delete(fn);
    };
  }

  /**
   * Sends `{type, data}`. Returns false (and sends nothing) while no
   * connection is up: the caller decides whether to try again after "open".
   */
  send(type, data = {}) {
    if (!this.connected) return false;
    this.ws.send(JSON.stringify({ type, data }));
    return true;
  }

  /** Ends the session for good: no reconnect. */
  close() {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.stopHeartbeat();
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      this.detach(ws);
      if (ws.readyState === WebSocket.OPEN) {
        try {
          ws.send(JSON.stringify({ type: "close_session", data: {} }));
        } catch {
          // Going away anyway.
        }
      }
      ws.close(1000, "closed by the page");
    }
    this.emit("close", { code: 1000, reason: "closed by the page", retryIn: null });
  }

  url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const query = new URLSearchParams();
    if (this.conversationId) query.set("conversation_id", this.conversationId);
    const token = this.token ? this.token() : null;
    if (token) query.set("token", token);
    const search = query.toString();
    return `${scheme}//${location.host}/ws/chat${search ? `?${search}` : ""}`;
  }

  connect() {
    if (this.closed) return;
    let ws;
    try {
      ws = new WebSocket(this.url());
    } catch {
      this.scheduleRetry(1006, "the connection could not be opened");
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      this.openedAt = Date.now();
      this.startHeartbeat();
      this.emit("open", { attempt: this.attempt });
    };
    ws.onmessage = (message) => this.receive(message.data);
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.stopHeartbeat();
      this.lost(event.code, event.reason);
    };
    // An error is always followed by a close, which does the work.
    ws.onerror = () => {};
  }

  receive(text) {
    this.alive();
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    if (!frame || typeof frame.type !== "string") return;
    const data = frame.data && typeof frame.data === "object" ? frame.data : {};
    this.emit(frame.type, data, frame);
    for (const fn of this.handlers.get("*") || []) fn(frame.type, data, frame);
  }

  emit(type, data, frame = null) {
    for (const fn of [...(this.handlers.get(type) || [])]) {
      try {
        fn(data, frame);
      } catch (error) {
        // One view's bug must not stop the others from hearing the frame.
        console.error(`ChatSocket: a "${type}" handler failed`, error);
      }
    }
  }

  /** A connection went down: tell the views, and try again unless final. */
  lost(code, reason) {
    if (this.closed) return;
    if (FINAL_CODES.has(code)) {
      this.closed = true;
      this.emit("close", { code, reason, retryIn: null });
      return;
    }
    this.scheduleRetry(code, reason);
  }

  scheduleRetry(code, reason) {
    if (this.openedAt && Date.now() - this.openedAt > STABLE_MS) this.attempt = 0;
    this.openedAt = 0;
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.attempt);
    const retryIn = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
    this.attempt += 1;
    this.emit("close", { code, reason, retryIn });
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), retryIn);
  }

  startHeartbeat() {
    this.stopHeartbeat();
    this.pingTimer = setInterval(() => {
      if (!this.send("ping", {})) return;
      if (!this.pongTimer) {
        this.pongTimer = setTimeout(() => this.dead(), PONG_GRACE_MS);
      }
    }, PING_MS);
  }

  stopHeartbeat() {
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
    this.pingTimer = null;
    this.pongTimer = null;
  }

  /** Any frame proves the connection is alive. */
  alive() {
    clearTimeout(this.pongTimer);
    this.pongTimer = null;
  }

  /** A connection that stopped answering: dropped and reopened now. */
  dead() {
    const ws = this.ws;
    if (!ws) return;
    this.ws = null;
    this.detach(ws);
    this.stopHeartbeat();
    ws.close(4000, "no answer to ping");
    this.lost(1006, "no answer to ping");
  }

  detach(ws) {
    ws.onopen = null;
    ws.onmessage = null;
    ws.onclose = null;
    ws.onerror = null;
  }
}
