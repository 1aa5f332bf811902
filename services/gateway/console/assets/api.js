// The gateway's API as the console calls it, and the browser session.
//
// The session (DESIGN §5, "Browsers"):
// - Every request carries `X-Confab-Client: console`. With it, login and
//   refresh set the refresh token as an HttpOnly cookie scoped to
//   /api/v1/auth and the access token as an HttpOnly cookie for same-origin
//   requests, EventSource and WebSockets; the marker also satisfies the
//   gateway's check on cookie-authenticated state-changing requests.
// - The access token the JSON answer carries lives in this module's memory
//   only (never in storage a script could read later) and is sent as
//   `Authorization: Bearer` while held.
// - It is refreshed silently shortly before it expires, and once on a 401
//   (the request is then retried once). A page that loads asks for a fresh
//   token first (`restore`), so a reload keeps the person signed in.
// - Refreshes are single-flight within a tab and serialised across tabs
//   (Web Locks), because the refresh token rotates on every use and the
//   gateway treats a token presented twice as stolen.
// - Tolerance: if the gateway still answers a `refresh_token` in JSON (a
//   gateway without the cookie form), it is kept in memory and sent in the
//   refresh and logout bodies instead; a reload then signs the person out.

const MARKER = { "x-confab-client": "console" };

/** Refresh this long before the access token expires (seconds). */
const REFRESH_MARGIN_SECS = 60;

let access = null;
let refreshToken = null;
let timer = null;
let refreshing = null;
const endListeners = new Set();

/** An API error: the gateway's `{"error":{code,message}}` and the wait a 429 asks for. */
export class ApiError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

/** Called with a reason when the session ends: signed out, or a refresh refused after a 401. */
export function onSessionEnd(listener) {
  endListeners.add(listener);
  return () => endListeners.delete(listener);
}

/** The headers every console request carries: the marker and, when held, the token. */
export function authHeaders() {
  const headers = { ...MARKER };
  if (access) headers.authorization = `Bearer ${access}`;
  return headers;
}

function adopt(tokens) {
  access = tokens.access_token || null;
  if (tokens.refresh_token) refreshToken = tokens.refresh_token;
  clearTimeout(timer);
  const lifetime = Number(tokens.expires_in);
  if (access && lifetime > 0) {
    // A short-lived token is refreshed at four fifths of its life.
    const wait = Math.max(1, Math.min(lifetime - REFRESH_MARGIN_SECS, lifetime * 0.8));
    timer = setTimeout(() => refresh().catch(() => {}), wait * 1000);
  }
}

function forget() {
  access = null;
  refreshToken = null;
  clearTimeout(timer);
  timer = null;
}

async function errorOf(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON (a proxy's page, an empty body): the status says it.
  }
  const error = (body && body.error) || {};
  const retryAfter = Number(response.headers.get("retry-after")) || Number(error.retry_after) || null;
  return new ApiError(
    response.status,
    error.code || "http_error",
    error.message || `${response.status} ${response.statusText}`.trim(),
    retryAfter,
  );
}

/** Where a 401 means "wrong credentials", not "the access token expired". */
const NO_RETRY = ["/api/v1/auth/login", "/api/v1/auth/register", "/api/v1/auth/refresh"];

/**
 * A request with the session's headers; answers the `Response` (any status).
 * A 401 outside the auth endpoints refreshes once and retries once; when the
 * refresh is refused the session has ended and its listeners hear why.
 */
export async function send(method, path, { body, headers = {}, signal } = {}) {
  const attempt = () => {
    const all = { accept: "application/json", ...authHeaders(), ...headers };
    if (body !== undefined) all["content-type"] = "application/json";
    return fetch(path, {
      method,
      headers: all,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      signal,
    });
  };
  let response = await attempt();
  if (response.status === 401 && !NO_RETRY.includes(path)) {
    if (await refresh()) {
      response = await attempt();
    } else {
      forget();
      for (const listener of endListeners) listener("Your session has ended; sign in again.");
    }
  }
  return response;
}

/** A JSON request: the answer's JSON (null for an empty body), or an `ApiError`. */
export async function request(method, path, body, options = {}) {
  const response = await send(method, path, { ...options, body });
  if (!response.ok) throw await errorOf(response);
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

export const get = (path, options) => request("GET", path, undefined, options);
export const post = (path, body, options) => request("POST", path, body, options);
export const patch = (path, body, options) => request("PATCH", path, body, options);
export const del = (path, options) => request("DELETE", path, undefined, options);

/**
 * A streaming request (SSE): the `Response` once it is OK, or an `ApiError`.
 * `lastEventId` is sent as `Last-Event-ID`, as an `EventSource` would.
 */
export async function stream(method, path, { body, lastEventId, signal } = {}) {
  const headers = { accept: "text/event-stream" };
  if (lastEventId !== undefined && lastEventId !== null) headers["last-event-id"] = String(lastEventId);
  const response = await send(method, path, { body, headers, signal });
  if (!response.ok) throw await errorOf(response);
  return response;
}

// --- the session -----------------------------------------------------------------

export async function register(username, password) {
  await request("POST", "/api/v1/auth/register", { username, password });
}

export async function login(username, password) {
  adopt(await request("POST", "/api/v1/auth/login", { username, password }));
}

async function refreshNow() {
  const body = refreshToken ? { refresh_token: refreshToken } : undefined;
  let response;
  try {
    response = await send("POST", "/api/v1/auth/refresh", { body });
  } catch {
    return false;
  }
  if (!response.ok) {
    if (response.status === 401) forget();
    return false;
  }
  adopt(await response.json());
  return true;
}

/** A new access token from the refresh cookie (or the token in memory); whether it worked. */
export function refresh() {
  if (!refreshing) {
    const locked = navigator.locks
      ? navigator.locks.request("confab-refresh", refreshNow)
      : refreshNow();
    refreshing = locked.finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

/** On page load: whether a session can be resumed without asking for the password. */
export function restore() {
  return refresh();
}

/** `{id, username, role}` of the signed-in person. */
export function me() {
  return get("/api/v1/auth/me");
}

/**
 * Signs out this device, or every device (`everywhere`), and announces the
 * session's end. Signing out this device always forgets the session here,
 * even when the gateway cannot be reached; signing out everywhere that
 * fails throws and keeps the session, so the person can see it did not
 * happen and try again.
 */
export async function logout({ everywhere = false } = {}) {
  const body = {};
  if (everywhere) body.everywhere = true;
  if (refreshToken) body.refresh_token = refreshToken;
  try {
    await request("POST", "/api/v1/auth/logout", Object.keys(body).length ? body : undefined);
  } catch (failure) {
    if (everywhere) throw failure;
  }
  forget();
  const why = everywhere ? "You are signed out on every device." : "You are signed out.";
  for (const listener of endListeners) listener(why);
}

// --- chat (DESIGN §7) --------------------------------------------------------------

const enc = encodeURIComponent;

function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

export const agents = () => get("/api/v1/agents");

export const conversations = ({ agentId, cursor, limit } = {}) =>
  get(`/api/v1/conversations${query({ agent_id: agentId, cursor, limit })}`);

export const conversation = (id) => get(`/api/v1/conversations/${enc(id)}`);

export const createConversation = (agentId, title) =>
  post("/api/v1/conversations", { agent_id: agentId, ...(title ? { title } : {}) });

export const renameConversation = (id, title) => patch(`/api/v1/conversations/${enc(id)}`, { title });

export const deleteConversation = (id) => del(`/api/v1/conversations/${enc(id)}`);

export const messages = (id, { beforeSeq, limit } = {}) =>
  get(`/api/v1/conversations/${enc(id)}/messages${query({ before_seq: beforeSeq, limit })}`);

export const cancelTurn = (id) => post(`/api/v1/conversations/${enc(id)}/cancel`);

/** Starts a turn; the `Response` carries its events (SSE). */
export const sendMessage = (id, message, signal) =>
  stream("POST", `/api/v1/conversations/${enc(id)}/messages/stream`, { body: { message }, signal });

/** Re-attaches to the conversation's turn after event `lastEventId` (0: from its start). */
export const followTurn = (id, lastEventId, signal) =>
  stream("GET", `/api/v1/conversations/${enc(id)}/stream`, { lastEventId, signal });
