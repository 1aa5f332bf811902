// The web console: sign in, see who is signed in, sign out.
import { ApiError, login, logout, me, register } from "./api.js";

const $ = (id) => document.getElementById(id);

function show(signedIn) {
  $("sign-in").hidden = signedIn;
  $("home").hidden = !signedIn;
  $("account").hidden = !signedIn;
}

/** An error shown where it happened, worded for a person. */
function explain(error) {
  if (!(error instanceof ApiError)) return "Confab cannot be reached; try again.";
  if (error.status === 429 && error.retryAfter) {
    return `${error.message} (wait ${error.retryAfter} s before trying again)`;
  }
  return error.message;
}

async function signedIn() {
  const user = await me();
  $("whoami").textContent = `${user.username} (${user.role})`;
  $("home-text").textContent = `Signed in as ${user.username}.`;
  show(true);
}

async function submit(action) {
  const username = $("username").value.trim();
  const password = $("password").value;
  const error = $("sign-in-error");
  error.hidden = true;
  try {
    if (action === "register") await register(username, password);
    await login(username, password);
    $("password").value = "";
    await signedIn();
  } catch (failure) {
    error.textContent = explain(failure);
    error.hidden = false;
  }
}

$("credentials").addEventListener("submit", (event) => {
  event.preventDefault();
  submit("login");
});
$("register").addEventListener("click", () => submit("register"));
$("sign-out").addEventListener("click", async () => {
  await logout().catch(() => {});
  show(false);
  $("username").focus();
});
show(false);
