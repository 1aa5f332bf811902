// The usage screen's chart: tokens per day as stacked bars (one colour per
// agent or model), and the day's cost as a line over them when any call
// had a price. Inline SVG drawn here (the CSP allows no third-party code);
// colours come from classes (pages.css), so light and dark schemes
// both work. The SVG is one image to assistive technology, with a title
// and a description; the table beneath it has the same numbers.
import { count, money } from "./page-kit.js";

const NS = "http://www.w3.org/2000/svg";
/** The drawing's width when none is given; a phone's is narrower, so its text stays legible. */
const WIDTH = 760;
const HEIGHT = 260;
const MARGIN = { top: 24, right: 64, bottom: 30, left: 58 };
/** Series with their own colour; the rest are drawn together as "Other". */
export const COLOURS = 8;

function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== null && value !== undefined) node.setAttribute(name, String(value));
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

/** The smallest 1, 2 or 5 × 10ⁿ that is at least `value / 4`, times 4: four even steps. */
function niceTop(value) {
  if (!(value > 0)) return 4;
  const step = value / 4;
  const power = 10 ** Math.floor(Math.log10(step));
  const nice = [1, 2, 2.5, 5, 10].find((m) => m * power >= step) * power;
  return Math.max(nice * 4, 4);
}

const short = (n) => {
  if (n >= 1e9) return `${+(n / 1e9).toFixed(1)}G`;
  if (n >= 1e6) return `${+(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${+(n / 1e3).toFixed(1)}k`;
  return String(Math.round(n));
};

/**
 * The chart of `report`: `{days: ["YYYY-MM-DD"…], series: [{key, label,
 * colour}], cell(day, key) → totals|undefined, dayTotal(day) → totals,
 * currency, splitName}` → an `<svg>` `width` units wide (its pixels when shown at
 * that width).
 */
export function drawChart(report, { id = "usage-chart", width = WIDTH } = {}) {
  const { days, series, currency } = report;
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const totals = days.map((day) => report.dayTotal(day));
  const tokensOf = (t) => (t ? (Number(t.input_tokens) || 0) + (Number(t.output_tokens) || 0) : 0);
  const top = niceTop(Math.max(0, ...totals.map(tokensOf)));
  const costs = totals.map((t) => (t && t.cost !== null && t.cost !== undefined ? Number(t.cost) : null));
  const costTop = Math.max(0, ...costs.filter((c) => c !== null));
  const slot = plotW / Math.max(1, days.length);
  const bar = Math.max(1, Math.min(28, slot * 0.7));
  const y = (tokens) => MARGIN.top + plotH - (tokens / top) * plotH;

  const busiest = totals.reduce((best, t, i) => (tokensOf(t) > tokensOf(totals[best]) ? i : best), 0);
  const sum = totals.reduce((n, t) => n + tokensOf(t), 0);
  const by = report.splitName ? `, stacked by ${report.splitName}` : "";
  const description =
    `Tokens (input and output) per day from ${days[0]} to ${days[days.length - 1]}${by}: ` +
    `${count(sum)} in all` +
    (sum ? `, most on ${days[busiest]} (${count(tokensOf(totals[busiest]))})` : "") +
    (costTop > 0 ? `. The line is the cost per day in ${currency}, up to ${money(costTop, currency)}` : "") +
    ". The table below lists the same numbers.";

  const grid = svg("g", { class: "chart-grid" });
  for (let i = 0; i <= 4; i += 1) {
    const value = (top / 4) * i;
    const at = y(value);
    grid.append(
      svg("line", { x1: MARGIN.left, x2: MARGIN.left + plotW, y1: at, y2: at }),
      svg("text", { x: MARGIN.left - 6, y: at + 4, "text-anchor": "end" }, document.createTextNode(short(value))));
  }
  grid.append(svg("text", { x: MARGIN.left - 6, y: MARGIN.top - 12, "text-anchor": "end", class: "chart-unit" },
    document.createTextNode("tokens")));

  const bars = svg("g", { class: "chart-bars" });
  const labels = svg("g", { class: "chart-days" });
  // A day's label needs about 44 px ("12-05" and room around it).
  const every = Math.ceil(days.length / Math.max(2, Math.floor(plotW / 44)));
  days.forEach((day, i) => {
    const x = MARGIN.left + slot * i + (slot - bar) / 2;
    let base = 0;
    for (const s of series) {
      const t = report.cell(day, s.key);
      const tokens = tokensOf(t);
      if (!tokens) continue;
      const rect = svg("rect", {
        x, width: bar, y: y(base + tokens), height: Math.max(0.5, y(base) - y(base + tokens)),
        class: `series series-${s.colour}`,
      }, svg("title", {}, document.createTextNode(
        `${day} · ${s.label}: ${count(tokens)} tokens, ${money(t.cost, currency)}`)));
      bars.append(rect);
      base += tokens;
    }
    if (i % every === 0 || i === days.length - 1) {
      labels.append(svg("text", { x: x + bar / 2, y: HEIGHT - 10, "text-anchor": "middle" },
        document.createTextNode(day.slice(5))));
    }
  });

  let costLayer = null;
  if (costTop > 0) {
    const cy = (cost) => MARGIN.top + plotH - (cost / costTop) * plotH;
    const points = costs
      .map((cost, i) => (cost === null ? null : [MARGIN.left + slot * i + slot / 2, cy(cost)]))
      .filter(Boolean);
    costLayer = svg("g", { class: "chart-cost" },
      svg("polyline", { points: points.map(([px, py]) => `${px.toFixed(1)},${py.toFixed(1)}`).join(" ") }),
      ...points.map(([px, py]) => svg("circle", { cx: px, cy: py, r: 2.5 })),
      svg("text", { x: MARGIN.left + plotW + 6, y: MARGIN.top + 4 }, document.createTextNode(money(costTop, currency))),
      svg("text", { x: MARGIN.left + plotW + 6, y: MARGIN.top + plotH + 4 }, document.createTextNode(money(0, currency))));
  }

  return svg("svg", {
    id, class: "usage-chart", viewBox: `0 0 ${width} ${HEIGHT}`, role: "img",
    "aria-labelledby": `${id}-title ${id}-desc`, preserveAspectRatio: "xMidYMid meet",
  },
  svg("title", { id: `${id}-title` }, document.createTextNode("Tokens per day")),
  svg("desc", { id: `${id}-desc` }, document.createTextNode(description)),
  grid, bars, costLayer, labels,
  svg("line", { class: "chart-axis", x1: MARGIN.left, x2: MARGIN.left + plotW, y1: y(0), y2: y(0) }));
}
