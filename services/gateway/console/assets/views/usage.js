// Usage (issue 21): the signed-in person's LLM tokens and their cost per
// day (GET /api/v1/usage?group_by=day&split_by=agent|model), as a chart
// stacked by agent or by model and a table of the same numbers, with the
// range's totals. Route: /usage?from=YYYY-MM-DD&to=YYYY-MM-DD&by=agent|model
// (the last 30 days by agent by default; the query keeps a range across
// reloads and links).
//
// Days are UTC days, as the API counts them, and both ends of the picked
// range are included (the API's `to` is exclusive: the day after is sent).
// A server that does not split the days yet (items without `split`) gets
// one series, "All calls".
import { element as el } from "../dom.js";
import { COLOURS, drawChart } from "./usage-chart.js";
import {
  addDays, alertLine, count, daysBetween, explain, heading, liveRegion, money, todayUtc,
} from "./page-kit.js";

/** The default range: today and the 29 days before it. */
const DEFAULT_DAYS = 30;
/** The API's longest range. */
const MAX_DAYS = 366;
const DAY = /^\d{4}-\d\d-\d\d$/;

const tokensOf = (t) => (Number(t.input_tokens) || 0) + (Number(t.output_tokens) || 0);

function add(into, t) {
  into.calls += Number(t.calls) || 0;
  into.input_tokens += Number(t.input_tokens) || 0;
  into.cached_input_tokens += Number(t.cached_input_tokens) || 0;
  into.output_tokens += Number(t.output_tokens) || 0;
  into.unpriced_calls += Number(t.unpriced_calls) || 0;
  if (t.cost !== null && t.cost !== undefined) into.cost = (into.cost ?? 0) + Number(t.cost);
  return into;
}

const empty = () => ({ calls: 0, input_tokens: 0, cached_input_tokens: 0, output_tokens: 0, cost: null, unpriced_calls: 0 });

/** The answer arranged for the chart and the table. */
function arrange(answer, from, to, split) {
  const items = Array.isArray(answer.items) ? answer.items : [];
  const splitShown = Boolean(answer.split_by) || items.some((item) => Object.hasOwn(item, "split"));
  const missing = split === "agent" ? "No agent" : "No model";
  const keyOf = (item) => (splitShown ? (item.split ?? "") : "*");
  const labelOf = (key) => (!splitShown ? "All calls" : key === "" ? missing : key);
  const days = [];
  for (let day = from; day <= to; day = addDays(day, 1)) days.push(day);
  const cells = new Map();
  const sizes = new Map();
  for (const item of items) {
    const key = keyOf(item);
    const byKey = cells.get(item.key) || new Map();
    byKey.set(key, add(byKey.get(key) || empty(), item));
    cells.set(item.key, byKey);
    sizes.set(key, (sizes.get(key) || 0) + tokensOf(item));
  }
  // The biggest series first; past the palette, the rest share "Other".
  const ranked = [...sizes.keys()].sort((a, b) => sizes.get(b) - sizes.get(a) || a.localeCompare(b));
  const own = ranked.slice(0, ranked.length > COLOURS ? COLOURS - 1 : COLOURS);
  const series = own.map((key, i) => ({ key, label: labelOf(key), colour: i }));
  const rest = new Set(ranked.slice(own.length));
  if (rest.size) series.push({ key: "\u0000other", label: `Other ${split}s`, colour: "other" });
  const cell = (day, key) => {
    const byKey = cells.get(day);
    if (!byKey) return undefined;
    if (key !== "\u0000other") return byKey.get(key);
    return [...byKey].filter(([k]) => rest.has(k)).reduce((sum, [, t]) => add(sum, t), empty());
  };
  const dayTotal = (day) => [...(cells.get(day) || new Map()).values()].reduce((sum, t) => add(sum, t), empty());
  return {
    days, series, cell, dayTotal, items, splitShown, labelOf, keyOf,
    currency: answer.currency || "USD",
    splitName: splitShown ? split : null,
    total: answer.total || items.reduce((sum, t) => add(sum, t), empty()),
  };
}

function totalsList(report) {
  const t = report.total;
  // No call at all costs nothing; calls of which none had a price cost an unknown amount.
  const cost = money(t.calls ? t.cost : (t.cost ?? 0), report.currency);
  const facts = [
    ["Calls", count(t.calls)],
    ["Input tokens", `${count(t.input_tokens)}${t.cached_input_tokens ? ` (${count(t.cached_input_tokens)} cached)` : ""}`],
    ["Output tokens", count(t.output_tokens)],
    ["Tokens", count(tokensOf(t))],
    [`Cost (${report.currency})`, t.unpriced_calls && t.cost !== null
      ? `${cost}, and ${count(t.unpriced_calls)} call${t.unpriced_calls === 1 ? "" : "s"} of unknown price`
      : cost],
  ];
  return el("dl", { className: "totals" },
    facts.map(([term, value]) => el("div", {}, el("dt", { text: term }), el("dd", { text: value }))));
}

function legend(report) {
  return el("ul", { className: "legend", "aria-label": "Series" },
    report.series.map((s) => el("li", {}, el("span", { className: `swatch series-${s.colour}`, "aria-hidden": "true" }), s.label)),
    report.dayTotal && report.days.some((d) => Number(report.dayTotal(d).cost) > 0)
      ? el("li", {}, el("span", { className: "swatch swatch-cost", "aria-hidden": "true" }), "Cost per day (line)")
      : null);
}

function table(report, split) {
  const columns = ["Day", ...(report.splitShown ? [split === "agent" ? "Agent" : "Model"] : []),
    "Calls", "Input tokens", "Cached input tokens", "Output tokens", "Tokens", `Cost (${report.currency})`];
  const numbers = (t) => [count(t.calls), count(t.input_tokens), count(t.cached_input_tokens),
    count(t.output_tokens), count(tokensOf(t)), money(t.cost, report.currency)];
  const cells = (values, labels) => values.map((v, i) => el("td", { "data-label": labels[i], text: v }));
  const rows = report.items.map((item) => el("tr", { "data-day": item.key },
    el("th", { scope: "row", "data-label": "Day", text: item.key ?? "—" }),
    report.splitShown ? el("td", { "data-label": columns[1], text: report.labelOf(report.keyOf(item)) }) : null,
    cells(numbers(item), columns.slice(report.splitShown ? 2 : 1))));
  return el("table", { className: "data-table usage-table" },
    el("caption", { text: "Tokens and cost per day" + (report.splitShown ? ` and ${split}` : "") }),
    el("thead", {}, el("tr", {}, columns.map((h) => el("th", { scope: "col", text: h })))),
    el("tbody", {}, rows),
    el("tfoot", {}, el("tr", { className: "usage-total" },
      el("th", { scope: "row", "data-label": "Day", text: "Total" }),
      report.splitShown ? el("td", { "data-label": columns[1] }) : null,
      cells(numbers(report.total), columns.slice(report.splitShown ? 2 : 1)))));
}

export function mount(root, { api }) {
  let alive = true;
  let generation = 0;
  const asked = new URLSearchParams(location.search);
  const today = todayUtc();
  const start = { from: asked.get("from"), to: asked.get("to") };
  const fromInput = el("input", { type: "date", id: "usage-from", name: "from", required: true, max: today });
  const toInput = el("input", { type: "date", id: "usage-to", name: "to", required: true, max: today });
  fromInput.value = DAY.test(start.from || "") ? start.from : addDays(today, 1 - DEFAULT_DAYS);
  toInput.value = DAY.test(start.to || "") ? start.to : today;
  const byModel = asked.get("by") === "model";
  const radios = ["agent", "model"].map((by) => el("input", {
    type: "radio", name: "usage-by", id: `usage-by-${by}`, value: by,
  }));
  radios[byModel ? 1 : 0].checked = true;
  const show = el("button", { type: "submit", className: "primary", text: "Show" });
  const error = alertLine();
  const status = el("p", { className: "hint", role: "status" });
  const live = liveRegion();
  const results = el("div", { className: "usage-results", "aria-busy": "false" });
  const form = el("form", { className: "usage-controls", novalidate: true, "aria-label": "Range" },
    el("div", { className: "field" }, el("label", { for: "usage-from", text: "From" }), fromInput),
    el("div", { className: "field" }, el("label", { for: "usage-to", text: "To" }), toInput),
    el("fieldset", { className: "toggle" }, el("legend", { text: "Stack by" }),
      radios.map((radio) => el("span", {}, radio, el("label", { for: radio.id, text: radio.value === "agent" ? "Agent" : "Model" })))),
    el("div", { className: "actions" }, show));

  const split = () => radios.find((r) => r.checked).value;

  /** Shows the picked range; `announce`: say its total when it arrives (not on the first load). */
  async function load({ announce = true } = {}) {
    error.clear();
    const from = fromInput.value;
    const to = toInput.value;
    if (!DAY.test(from) || !DAY.test(to)) {
      error.show("Pick the first and the last day.");
      return;
    }
    if (from > to) {
      error.show("The first day must not be after the last.");
      return;
    }
    if (daysBetween(from, to) + 1 > MAX_DAYS) {
      error.show(`At most ${MAX_DAYS} days at a time.`);
      return;
    }
    const by = split();
    history.replaceState(null, "", `/usage?from=${from}&to=${to}&by=${by}`);
    const mine = ++generation;
    status.textContent = "Loading…";
    results.setAttribute("aria-busy", "true");
    const search = new URLSearchParams({ from, to: addDays(to, 1), group_by: "day", split_by: by });
    try {
      const answer = await api.get(`/api/v1/usage?${search}`);
      if (!alive || mine !== generation) return;
      render(arrange(answer || {}, from, to, by), by);
      status.textContent = "";
      if (announce) live.announcer.say(`Usage from ${from} to ${to}: ${count(tokensOf(answer.total || {}))} tokens.`);
    } catch (failure) {
      if (!alive || mine !== generation) return;
      status.textContent = "";
      error.show(`Your usage could not be read: ${explain(failure)}`);
    } finally {
      if (mine === generation) results.setAttribute("aria-busy", "false");
    }
  }

  function render(report, by) {
    const parts = [el("h2", { id: "usage-totals-title", text: "Totals" }), totalsList(report)];
    if (!report.items.length) {
      parts.push(el("p", { className: "empty", text: "No LLM calls in this range. Chat with an agent and its calls are counted here." }));
    } else {
      parts.push(el("h2", { id: "usage-chart-heading", text: "Tokens per day" }));
      if (!report.splitShown) {
        parts.push(el("p", { className: "hint", text: "This server does not split the days by agent or model yet: every call is in one series." }));
      }
      // Drawn at the width it is shown at (within bounds), so its text is legible on a phone.
      const width = Math.round(Math.min(760, Math.max(340, results.clientWidth || 760)));
      parts.push(legend(report), el("div", { className: "chart-box" }, drawChart(report, { width })));
      parts.push(el("div", { className: "table-scroll" }, table(report, by)));
    }
    results.replaceChildren(...parts);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  for (const radio of radios) radio.addEventListener("change", () => load());

  const section = el("section", { className: "page usage-page", "aria-labelledby": "usage-title" },
    heading(1, "usage-title", "Usage"),
    el("p", { className: "lede", text: "Tokens your conversations and keys used, per day (UTC), and what they cost." }),
    form, error.node, status, results, live.node);
  root.append(section);
  document.title = "Usage · Confab";
  load({ announce: false });
  return () => {
    alive = false;
    live.announcer.dispose();
    section.remove();
  };
}
