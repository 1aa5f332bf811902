// A small Markdown renderer that is safe by construction: it builds DOM
// nodes with createElement and textContent only, so text is never parsed as
// HTML (`<img src=x onerror=…>` stays text). Links keep only http(s) and
// mailto addresses, open in a new tab with `rel="noopener noreferrer"`;
// any other link (`javascript:`, `data:`, relative) is shown as the text it
// was written as. Images are never loaded: they become links.
//
// What it reads: paragraphs (a single newline is a line break, as chat text
// expects), ATX headings (rendered a few levels down, h3–h6, so a reply does
// not compete with the page's own headings), fenced code, block quotes,
// bulleted and numbered lists (nested by indentation), GFM tables, rules,
// and inline code, **strong**, *emphasis*, ~~strike~~, links, autolinks and
// bare URLs, backslash escapes. Anything it does not read stays text.
import { textElement as el } from "./dom.js";

const SAFE_SCHEMES = new Set(["http:", "https:", "mailto:"]);

/** The address if it is an absolute http(s) or mailto URL, else null. */
export function safeHref(raw) {
  const text = String(raw).trim();
  if (!/^(https?:\/\/|mailto:)/i.test(text)) return null;
  try {
    const url = new URL(text);
    return SAFE_SCHEMES.has(url.protocol) ? url.href : null;
  } catch {
    return null;
  }
}

function link(href, children) {
  const a = el("a");
  a.href = href;
  a.target = "_blank";
  a.rel = "noopener noreferrer";
  for (const child of children) a.append(child);
  return a;
}

// --- blocks ------------------------------------------------------------------------

const FENCE = /^ {0,3}(`{3,}|~{3,})(.*)$/;
const HEADING = /^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t#]*$/;
const RULE = /^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$/;
const QUOTE = /^ {0,3}> ?(.*)$/;
const ITEM = /^( *)([-*+]|\d{1,9}[.)])(?:[ \t]+(.*))?$/;
const TABLE_RULE = /^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/;

function startsBlock(line) {
  return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line) || ITEM.test(line);
}

function cells(row) {
  let text = row.trim();
  if (text.startsWith("|")) text = text.slice(1);
  if (text.endsWith("|") && !text.endsWith("\\|")) text = text.slice(0, -1);
  return text.split(/(?<!\\)\|/).map((cell) => cell.trim());
}

function renderBlocks(lines, parent, depth) {
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (line.trim() === "") {
      i += 1;
      continue;
    }
    let match;
    if ((match = FENCE.exec(line))) {
      const fence = match[1];
      const code = [];
      i += 1;
      while (i < lines.length && !new RegExp(`^ {0,3}${fence[0]}{${fence.length},}\\s*$`).test(lines[i])) {
        code.push(lines[i]);
        i += 1;
      }
      i += 1;
      const pre = el("pre");
      const codeNode = el("code", null, code.join("\n"));
      const language = match[2].trim().split(/\s/)[0];
      if (language) pre.dataset.language = language;
      pre.append(codeNode);
      parent.append(pre);
      continue;
    }
    if ((match = HEADING.exec(line))) {
      const level = Math.min(6, match[1].length + 2);
      const heading = el(`h${level}`);
      inline(match[2] || "", heading);
      parent.append(heading);
      i += 1;
      continue;
    }
    if (RULE.test(line)) {
      parent.append(el("hr"));
      i += 1;
      continue;
    }
    if (QUOTE.test(line)) {
      const quoted = [];
      while (i < lines.length && (match = QUOTE.exec(lines[i]))) {
        quoted.push(match[1]);
        i += 1;
      }
      const quote = el("blockquote");
      if (depth < 8) renderBlocks(quoted, quote, depth + 1);
      else inline(quoted.join("\n"), quote);
      parent.append(quote);
      continue;
    }
    if ((match = ITEM.exec(line))) {
      i = renderList(lines, i, parent, depth);
      continue;
    }
    if (line.includes("|") && i + 1 < lines.length && TABLE_RULE.test(lines[i + 1]) && lines[i + 1].includes("-")) {
      i = renderTable(lines, i, parent);
      continue;
    }
    const paragraph = [];
    while (i < lines.length && lines[i].trim() !== "" && (paragraph.length === 0 || !startsBlock(lines[i]))) {
      paragraph.push(lines[i]);
      i += 1;
    }
    const p = el("p");
    inline(paragraph.join("\n"), p);
    parent.append(p);
  }
}

function renderList(lines, start, parent, depth) {
  const first = ITEM.exec(lines[start]);
  const indent = first[1].length;
  const ordered = /\d/.test(first[2]);
  const list = el(ordered ? "ol" : "ul");
  if (ordered) {
    const number = parseInt(first[2], 10);
    if (number !== 1) list.start = number;
  }
  let i = start;
  while (i < lines.length) {
    const match = ITEM.exec(lines[i]);
    if (!match || match[1].length !== indent || /\d/.test(match[2]) !== ordered) break;
    const body = [match[3] || ""];
    i += 1;
    // The item goes on over lines indented deeper than its marker, and
    // over blank lines followed by such lines.
    while (i < lines.length) {
      const next = lines[i];
      const nextIndent = next.length - next.trimStart().length;
      if (next.trim() === "") {
        const after = lines[i + 1];
        if (after !== undefined && after.trim() !== "" && after.length - after.trimStart().length > indent) {
          body.push("");
          i += 1;
          continue;
        }
        break;
      }
      if (nextIndent > indent) {
        body.push(next.slice(Math.min(nextIndent, indent + 2)));
        i += 1;
        continue;
      }
      if (!startsBlock(next) && body[body.length - 1] !== "") {
        // A lazy continuation of the item's paragraph.
        body.push(next);
        i += 1;
        continue;
      }
      break;
    }
    const item = el("li");
    if (depth < 8 && body.length > 1) renderBlocks(body, item, depth + 1);
    else inline(body.join("\n"), item);
    // A one-paragraph item reads without its <p>.
    if (item.childNodes.length === 1 && item.firstChild.nodeName === "P") {
      item.replaceChildren(...item.firstChild.childNodes);
    }
    list.append(item);
  }
  parent.append(list);
  return i;
}

function renderTable(lines, start, parent) {
  const head = cells(lines[start]);
  const aligns = cells(lines[start + 1]).map((spec) =>
    spec.startsWith(":") && spec.endsWith(":") ? "center" : spec.endsWith(":") ? "right" : null,
  );
  const table = el("table");
  const thead = el("thead");
  const headRow = el("tr");
  head.forEach((text, column) => {
    const th = el("th");
    th.scope = "col";
    if (aligns[column]) th.className = `align-${aligns[column]}`;
    inline(text, th);
    headRow.append(th);
  });
  thead.append(headRow);
  table.append(thead);
  const tbody = el("tbody");
  let i = start + 2;
  while (i < lines.length && lines[i].includes("|") && lines[i].trim() !== "") {
    const row = el("tr");
    const values = cells(lines[i]);
    head.forEach((_, column) => {
      const td = el("td");
      if (aligns[column]) td.className = `align-${aligns[column]}`;
      inline(values[column] || "", td);
      row.append(td);
    });
    tbody.append(row);
    i += 1;
  }
  table.append(tbody);
  const wrap = el("div", "table-wrap");
  wrap.append(table);
  parent.append(wrap);
  return i;
}

// --- inline ------------------------------------------------------------------------

const ESCAPABLE = "\\`*_{}[]()#+-.!|~<>\"'";
const BARE_URL = /^(?:https?:\/\/|mailto:)[^\s<>]*[^\s<>.,;:!?'")\]}*_~]/i;

/** Where the `]` closing the `[` at `open` is (brackets nest), or -1. */
function closingBracket(text, open) {
  let depth = 0;
  for (let i = open; i < text.length; i += 1) {
    const c = text[i];
    if (c === "\\") i += 1;
    else if (c === "[") depth += 1;
    else if (c === "]") {
      depth -= 1;
      if (depth === 0) return i;
    }
  }
  return -1;
}

/** `(address "title")` after a link's text: [address, end] or null. */
function destination(text, open) {
  if (text[open] !== "(") return null;
  let depth = 0;
  for (let i = open; i < text.length; i += 1) {
    const c = text[i];
    if (c === "\\") i += 1;
    else if (c === "(") depth += 1;
    else if (c === ")") {
      depth -= 1;
      if (depth === 0) {
        const inner = text.slice(open + 1, i).trim();
        const address = inner.replace(/\s+(?:"[^"]*"|'[^']*')$/, "").replace(/^<(.*)>$/, "$1");
        return [address, i + 1];
      }
    } else if (c === "\n") return null;
  }
  return null;
}

function emphasisEnd(text, from, marker) {
  let i = from;
  while (i < text.length) {
    const at = text.indexOf(marker, i);
    if (at < 0) return -1;
    if (text[at - 1] === "\\") {
      i = at + 1;
      continue;
    }
    // A closer follows text, and `_` closes only at a word's end.
    const before = text[at - 1];
    const after = text[at + marker.length];
    if (before !== undefined && !/\s/.test(before) && at > from) {
      if (marker[0] !== "_" || after === undefined || !/\w/.test(after)) return at;
    }
    i = at + 1;
  }
  return -1;
}

/** Appends `text`'s inline Markdown to `parent`; nesting deeper than 16 stays text. */
function inline(text, parent, depth = 0) {
  if (depth > 16) {
    parent.append(document.createTextNode(text));
    return;
  }
  let plain = "";
  const flush = () => {
    if (plain) parent.append(document.createTextNode(plain));
    plain = "";
  };
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    const rest = text.slice(i);
    if (c === "\\" && i + 1 < text.length && ESCAPABLE.includes(text[i + 1])) {
      plain += text[i + 1];
      i += 2;
      continue;
    }
    if (c === "\\" && text[i + 1] === "\n") {
      flush();
      parent.append(el("br"));
      i += 2;
      continue;
    }
    if (c === "\n") {
      flush();
      parent.append(el("br"));
      i += 1;
      continue;
    }
    if (c === "`") {
      const ticks = /^`+/.exec(rest)[0];
      const close = text.indexOf(ticks, i + ticks.length);
      if (close > 0) {
        flush();
        let code = text.slice(i + ticks.length, close);
        if (/^ .* $/.test(code)) code = code.slice(1, -1);
        parent.append(el("code", null, code));
        i = close + ticks.length;
        continue;
      }
      plain += ticks;
      i += ticks.length;
      continue;
    }
    if (c === "[" || (c === "!" && text[i + 1] === "[")) {
      const open = c === "!" ? i + 1 : i;
      const close = closingBracket(text, open);
      const target = close > 0 ? destination(text, close + 1) : null;
      if (target) {
        const [address, end] = target;
        const label = text.slice(open + 1, close);
        const href = safeHref(address);
        flush();
        if (href) {
          const content = el("span");
          if (c === "!") content.textContent = label || address;
          else inline(label, content, depth + 1);
          parent.append(link(href, content.childNodes.length ? [...content.childNodes] : [address]));
        } else {
          // Not a safe address: shown as written, inert.
          const inert = el("span", "inert-link", text.slice(i, end));
          inert.title = "Not a link: only http, https and mailto addresses are followed";
          parent.append(inert);
        }
        i = end;
        continue;
      }
    }
    if (c === "<") {
      const auto = /^<((?:https?:\/\/|mailto:)[^\s<>]+)>/i.exec(rest);
      const href = auto && safeHref(auto[1]);
      if (href) {
        flush();
        parent.append(link(href, [auto[1]]));
        i += auto[0].length;
        continue;
      }
    }
    if ((c === "h" || c === "H" || c === "m" || c === "M") && !/\w/.test(text[i - 1] || "")) {
      const bare = BARE_URL.exec(rest);
      const href = bare && safeHref(bare[0]);
      if (href) {
        flush();
        parent.append(link(href, [bare[0]]));
        i += bare[0].length;
        continue;
      }
    }
    const strong = /^(\*\*|__)/.exec(rest);
    const marker = strong ? strong[1] : c === "*" || c === "_" ? c : rest.startsWith("~~") ? "~~" : null;
    if (marker && !/\s/.test(text[i + marker.length] || " ")) {
      const opensWord = marker[0] !== "_" || !/\w/.test(text[i - 1] || "");
      const end = opensWord ? emphasisEnd(text, i + marker.length, marker) : -1;
      if (end > 0) {
        flush();
        const tag = marker === "~~" ? "del" : marker.length === 2 ? "strong" : "em";
        const node = el(tag);
        inline(text.slice(i + marker.length, end), node, depth + 1);
        parent.append(node);
        i = end + marker.length;
        continue;
      }
    }
    plain += c;
    i += 1;
  }
  flush();
}

/** `text` as rendered Markdown: a fragment of safe DOM nodes. */
export function renderMarkdown(text) {
  const fragment = document.createDocumentFragment();
  renderBlocks(String(text ?? "").split(/\r\n|\r|\n/), fragment, 0);
  return fragment;
}
