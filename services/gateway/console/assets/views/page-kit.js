// Small pieces the API keys, usage and admin screens share: dates, numbers,
// money, an error line, a live region, a query string and a console link.
import { element as el } from "../dom.js";
import { Announcer } from "./announcer.js";

const pad = (n) => String(n).padStart(2, "0");

/** A timestamp in local time, `YYYY-MM-DD HH:MM` ("" for none). */
export function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** A `<time>` element for a timestamp, or `fallback` when there is none. */
export function timeElement(iso, fallback = "—") {
  if (!iso) return fallback;
  return el("time", { datetime: iso, text: when(iso) });
}

/** Today's date in UTC, `YYYY-MM-DD`: the days of usage and of the trail are UTC days. */
export function todayUtc() {
  return new Date().toISOString().slice(0, 10);
}

/** `YYYY-MM-DD` moved by `days` (UTC); null for a date that is not one. */
export function addDays(day, days) {
  const date = new Date(`${day}T00:00:00Z`);
  if (Number.isNaN(date.getTime())) return null;
  date.setUTCDate(date.getUTCDate() + days);
  return date.toISOString().slice(0, 10);
}

/** Whole days from `from` to `to` (both `YYYY-MM-DD`). */
export function daysBetween(from, to) {
  return Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86400000);
}

const integer = new Intl.NumberFormat("en-US");

/** A count with thousands separators. */
export function count(n) {
  return integer.format(Number(n) || 0);
}

/**
 * A cost in `currency`: "unknown price" for null (every call unpriced);
 * small amounts keep three significant digits instead of rounding to zero.
 */
export function money(cost, currency = "USD") {
  if (cost === null || cost === undefined) return "unknown price";
  const value = Number(cost);
  const small = value !== 0 && Math.abs(value) < 0.01;
  const options = small
    ? { style: "currency", currency, maximumSignificantDigits: 3 }
    : { style: "currency", currency, minimumFractionDigits: 2, maximumFractionDigits: 2 };
  try {
    return new Intl.NumberFormat("en-US", options).format(value);
  } catch {
    // A currency code Intl does not know: the number and the code.
    return `${small ? value.toPrecision(3) : value.toFixed(2)} ${currency}`;
  }
}

/** What to tell the person about a failed request: the API's own message. */
export function explain(error) {
  if (!error || error.name !== "ApiError") return "Confab cannot be reached; check the connection and try again.";
  if (error.status === 429 && error.retryAfter) return `${error.message} (try again in ${error.retryAfter} s)`;
  return error.message;
}

/**
 * An error line (`role="alert"`): `show(text or error)` announces it at
 * once, `clear()` hides it.
 */
export function alertLine(className = "error") {
  const node = el("p", { className, role: "alert", hidden: true });
  return {
    node,
    show(what) {
      node.textContent = typeof what === "string" ? what : explain(what);
      node.hidden = false;
    },
    clear() {
      node.textContent = "";
      node.hidden = true;
    },
  };
}

/** A visually hidden polite status region and its `Announcer` (`say(text)`). */
export function liveRegion() {
  const node = el("p", { className: "visually-hidden", role: "status", "aria-live": "polite" });
  return { node, announcer: new Announcer(node) };
}

/** `?a=1&b=2` of the given values, leaving out empty ones ("" when none is left). */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/** A link inside the console that moves through `navigate` (the shell's history). */
export function consoleLink(navigate, path, text, attributes = {}) {
  return el("a", {
    href: path,
    text,
    ...attributes,
    onclick: (event) => {
      if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
      event.preventDefault();
      navigate(path);
    },
  });
}

/** A heading that takes focus on mount (`tabIndex = -1`). */
export function heading(level, id, text) {
  const node = el(`h${level}`, { id, text });
  node.tabIndex = -1;
  return node;
}

/** A label and its control, as one block of a form. */
export function field(labelText, control, hint) {
  const hintNode = hint ? el("span", { className: "hint", id: `${control.id}-hint`, text: hint }) : null;
  if (hintNode) control.setAttribute("aria-describedby", hintNode.id);
  return el("div", { className: "field" }, el("label", { for: control.id, text: labelText }), control, hintNode);
}

/**
 * Runs `work` with `button` disabled and marked busy. A disabled button
 * loses focus, so one that had it gets it back when the work ends (unless
 * the person moved on meanwhile).
 */
export async function busy(button, work) {
  const focused = document.activeElement === button;
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
    const lost = !document.activeElement || document.activeElement === document.body;
    if (focused && lost && button.isConnected) button.focus();
  }
}
