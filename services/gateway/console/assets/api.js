// The gateway's JSON API as the console calls it. The tokens live in this
// module's memory only, never in storage a script on the page could read
// later.

let session = null; // {access, refresh}

/** An API error: the gateway's `{"error":{code,message}}` and the wait a 429 asks for. */
export class ApiError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

async function call(method, path, body) {
  const headers = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (session) headers.authorization = `Bearer ${session.access}`;
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  const text = await response.text();
  const json = text ? JSON.parse(text) : null;
  if (!response.ok) {
    const error = (json && json.error) || {};
    throw new ApiError(
      response.status,
      error.code || "http_error",
      error.message || `${response.status} ${response.statusText}`,
      Number(response.headers.get("retry-after")) || null,
    );
  }
  return json;
}

export async function register(username, password) {
  await call("POST", "/api/v1/auth/register", { username, password });
}

export async function login(username, password) {
  const tokens = await call("POST", "/api/v1/auth/login", { username, password });
  session = { access: tokens.access_token, refresh: tokens.refresh_token };
}

export function me() {
  return call("GET", "/api/v1/auth/me");
}

export async function logout() {
  if (!session) return;
  const refresh_token = session.refresh;
  try {
    await call("POST", "/api/v1/auth/logout", { refresh_token });
  } finally {
    session = null;
  }
}
